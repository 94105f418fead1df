// driver.cpp: runs one of detlab's CUDA kernels (the real sources, compiled
// for the CPU through sim.h) on data files, for lib/cuda/hostcheck's tests.
//
//	driver KERNEL GRID BLOCK SCALARS... -- FILES...
//
// SCALARS are decimal integers, a float or double parameter given as its
// IEEE-754 bits. Each FILE holds one pointer argument as raw little-endian bytes; the
// files are read, the kernel runs, and every file is written back (the
// kernel's outputs), in the order the kernel takes its pointers.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "sim.h"
#include "kernels.cu"

namespace {

struct File {
  std::string path;
  std::vector<double> store;  // double-aligned bytes
  size_t bytes = 0;
  template <class T>
  T* as() {
    return bytes == 0 ? nullptr : reinterpret_cast<T*>(store.data());
  }
};

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "driver: %s\n", msg.c_str());
  std::exit(2);
}

File read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) die("cannot read " + path);
  std::vector<char> raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  File f;
  f.path = path;
  f.bytes = raw.size();
  f.store.resize((raw.size() + 7) / 8);
  if (!raw.empty()) std::memcpy(f.store.data(), raw.data(), raw.size());
  return f;
}

void write_file(File& f) {
  std::ofstream out(f.path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(f.store.data()), (std::streamsize)f.bytes);
  if (!out) die("cannot write " + f.path);
}

float bits_float(long long v) {
  const uint32_t u = (uint32_t)v;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

double bits_double(long long v) {
  const uint64_t u = (uint64_t)v;
  double d;
  std::memcpy(&d, &u, sizeof d);
  return d;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) die("usage: driver KERNEL GRID BLOCK SCALARS... -- FILES...");
  const std::string k = argv[1];
  const unsigned grid = (unsigned)std::atoi(argv[2]), block = (unsigned)std::atoi(argv[3]);
  std::vector<long long> s;
  std::vector<File> f;
  int i = 4;
  for (; i < argc && std::string(argv[i]) != "--"; i++) s.push_back(std::atoll(argv[i]));
  for (i++; i < argc; i++) f.push_back(read_file(argv[i]));
  auto need = [&](size_t ns, size_t nf) {
    if (s.size() != ns || f.size() != nf) {
      die(k + ": want " + std::to_string(ns) + " scalars and " + std::to_string(nf) + " files, got " +
          std::to_string(s.size()) + " and " + std::to_string(f.size()));
    }
  };
  auto I = [&](size_t j) { return (int)s[j]; };
  auto P = [&](size_t j) { return f[j].as<float>(); };

  if (k == "detlab_im2col" || k == "detlab_col2im") {
    need(11, 2);
    auto fn = k == "detlab_im2col" ? detlab_im2col : detlab_col2im;
    sim_launch(grid, block, false, [&] {
      fn(P(0), P(1), I(0), I(1), I(2), I(3), I(4), I(5), I(6), I(7), I(8), I(9), I(10));
    });
  } else if (k == "detlab_bias_add") {
    need(3, 2);
    sim_launch(grid, block, false, [&] { detlab_bias_add(P(0), P(1), I(0), I(1), I(2)); });
  } else if (k == "detlab_channel_sum_add") {
    need(3, 2);
    sim_launch(grid, block, true, [&] { detlab_channel_sum_add(P(0), P(1), I(0), I(1), I(2)); });
  } else if (k == "detlab_channel_stats") {
    need(3, 3);
    sim_launch(grid, block, true,
               [&] { detlab_channel_stats(P(0), I(0), I(1), I(2), f[1].as<double>(), f[2].as<double>()); });
  } else if (k == "detlab_channel_affine") {
    need(4, 4);
    sim_launch(grid, block, false, [&] { detlab_channel_affine(P(0), P(1), I(0), I(1), I(2), P(2), P(3), I(3)); });
  } else if (k == "detlab_bn_train_stats") {
    need(5, 7);  // N, C, HW, momentum, eps (double bits); x, gamma, beta, run_mean, run_var, stats, affine
    sim_launch(grid, block, true, [&] {
      detlab_bn_train_stats(P(0), I(0), I(1), I(2), P(1), P(2), P(3), P(4), bits_double(s[3]), bits_double(s[4]), P(5),
                            P(6));
    });
  } else if (k == "detlab_bn_backward_sums") {
    need(4, 8);  // N, C, HW, relu; x, y, dy, stats, gamma, dgamma, dbeta, coef (empty files: NULL)
    sim_launch(grid, block, true, [&] {
      detlab_bn_backward_sums(P(0), P(1), P(2), P(3), P(4), I(0), I(1), I(2), I(3), P(5), P(6), f[7].as<double>());
    });
  } else if (k == "detlab_bn_backward_dx") {
    need(4, 6);  // N, C, HW, relu; x, y, dy, stats, coef, dx
    sim_launch(grid, block, false, [&] {
      detlab_bn_backward_dx(P(0), P(1), P(2), P(3), f[4].as<double>(), P(5), I(0), I(1), I(2), I(3));
    });
  } else if (k == "detlab_maxpool2d") {
    need(11, 3);
    sim_launch(grid, block, false, [&] {
      detlab_maxpool2d(P(0), P(1), f[2].as<int>(), I(0), I(1), I(2), I(3), I(4), I(5), I(6), I(7), I(8), I(9),
                       I(10));
    });
  } else if (k == "detlab_maxpool2d_backward") {
    need(5, 3);
    sim_launch(grid, block, false,
               [&] { detlab_maxpool2d_backward(P(0), P(1), f[2].as<int>(), I(0), I(1), I(2), I(3), I(4)); });
  } else if (k == "detlab_round_bf16" || k == "detlab_round_fp16") {
    need(1, 2);
    auto fn = k == "detlab_round_bf16" ? detlab_round_bf16 : detlab_round_fp16;
    sim_launch(grid, block, false, [&] { fn(P(0), P(1), I(0)); });
  } else if (k == "detlab_add") {
    need(2, 3);
    sim_launch(grid, block, false, [&] { detlab_add(P(0), P(1), P(2), I(0), I(1)); });
  } else if (k == "detlab_relu") {
    need(1, 2);
    sim_launch(grid, block, false, [&] { detlab_relu(P(0), P(1), I(0)); });
  } else if (k == "detlab_relu_backward") {
    need(1, 3);
    sim_launch(grid, block, false, [&] { detlab_relu_backward(P(0), P(1), P(2), I(0)); });
  } else if (k == "detlab_sgd_step") {
    need(7, 3);  // n, lr, momentum, dampening, weight_decay (bits), nesterov, first_step
    sim_launch(grid, block, false, [&] {
      detlab_sgd_step(P(0), P(1), P(2), I(0), bits_float(s[1]), bits_float(s[2]), bits_float(s[3]),
                      bits_float(s[4]), I(5), I(6));
    });
  } else if (k == "detlab_nonfinite") {
    need(1, 2);
    sim_launch(grid, block, false, [&] { detlab_nonfinite(P(0), I(0), f[1].as<int>()); });
  } else if (k == "detlab_scale") {
    need(2, 1);
    sim_launch(grid, block, false, [&] { detlab_scale(P(0), I(0), bits_float(s[1])); });
  } else if (k == "detlab_nms_mask") {
    // One launch per problem, several problems per run: scalars n, cut
    // (bits) and files boxes, mask for each.
    if (s.empty() || s.size() % 2 != 0 || f.size() != s.size()) {
      die(k + ": want n, cut and boxes, mask per problem, got " + std::to_string(s.size()) + " scalars and " +
          std::to_string(f.size()) + " files");
    }
    for (size_t j = 0; j < s.size(); j += 2) {
      sim_launch(grid, block, true, [&] {
        detlab_nms_mask(P(j), I(j), bits_float(s[j + 1]), f[j + 1].as<unsigned long long>());
      });
    }
  } else if (k == "detlab_to_bf16" || k == "detlab_to_fp16") {
    need(1, 2);
    auto fn = k == "detlab_to_bf16" ? detlab_to_bf16 : detlab_to_fp16;
    sim_launch(grid, block, false, [&] { fn(P(0), f[1].as<unsigned short>(), I(0)); });
  } else if (k == "detlab_im2col_bf16" || k == "detlab_im2col_fp16") {
    need(13, 2);
    auto fn = k == "detlab_im2col_bf16" ? detlab_im2col_bf16 : detlab_im2col_fp16;
    sim_launch(grid, block, false, [&] {
      fn(P(0), f[1].as<unsigned short>(), I(0), I(1), I(2), I(3), I(4), I(5), I(6), I(7), I(8), I(9), I(10),
         I(11), I(12));
    });
  } else if (k == "detlab_roialign_layout") {
    need(9, 2);  // K, H, W, OH, OW, sampling_ratio, spatial_scale (bits), aligned, cap
    sim_launch(grid, block, false, [&] {
      detlab_roialign_layout(P(0), f[1].as<int>(), I(0), I(1), I(2), I(3), I(4), I(5), bits_float(s[6]), I(7),
                             I(8));
    });
  } else if (k == "detlab_roialign_forward" || k == "detlab_roialign_backward") {
    need(8, 3);  // N, C, H, W, K, OH, OW, cap
    auto fn = k == "detlab_roialign_forward" ? detlab_roialign_forward : detlab_roialign_backward;
    sim_launch(grid, block, false, [&] {
      fn(P(0), f[1].as<int>(), P(2), I(0), I(1), I(2), I(3), I(4), I(5), I(6), I(7));
    });
  } else if (k == "detlab_conv_epilogue") {
    need(4, 4);  // N, K, HW, relu; y, scale, shift, residual (empty files: NULL)
    sim_launch(grid, block, false, [&] { detlab_conv_epilogue(P(0), P(1), P(2), P(3), I(0), I(1), I(2), I(3)); });
  } else if (k == "detlab_convbn_backward") {
    need(4, 5);  // N, K, HW, relu; dy, y, scale, dc, dres (empty files: NULL)
    sim_launch(grid, block, false,
               [&] { detlab_convbn_backward(P(0), P(1), P(2), P(3), P(4), I(0), I(1), I(2), I(3)); });
  } else if (k == "detlab_bias_grad") {
    need(2, 2);  // rows, cols; dy, db
    sim_launch(grid, block, false, [&] { detlab_bias_grad(P(0), P(1), I(0), I(1)); });
  } else {
    die("unknown kernel " + k);
  }
  for (auto& file : f) write_file(file);
  return 0;
}
