// sim.h: just enough of CUDA to compile detlab's kernel sources with g++
// and run them on the CPU: every block of a launch runs its threads as real
// OS threads (so __syncthreads is a true barrier and __shared__ memory is
// shared), one block after another.
#ifndef DETLAB_SIM_H
#define DETLAB_SIM_H

#include <barrier>
#include <mutex>
#include <thread>
#include <vector>

#define __global__
#define __host__
#define __device__
#define __forceinline__ inline
// One block runs at a time, so a function-local static is the block's
// shared memory.
#define __shared__ static

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
};

thread_local dim3 threadIdx, blockIdx;
dim3 blockDim, gridDim;

std::barrier<>* sim_barrier;
inline void __syncthreads() { sim_barrier->arrive_and_wait(); }

std::mutex sim_atomic;
inline float atomicAdd(float* p, float v) {
  std::lock_guard<std::mutex> lock(sim_atomic);
  const float old = *p;
  *p = old + v;
  return old;
}

// sim_launch runs f as the kernel launch <<<grid, block>>>. A kernel that
// uses no __syncthreads (barriers false) has its threads run one after
// another on the calling thread, a valid schedule for it and much faster.
template <class F>
void sim_launch(unsigned grid, unsigned block, bool barriers, F f) {
  gridDim.x = grid;
  blockDim.x = block;
  if (!barriers) {
    for (unsigned b = 0; b < grid; b++) {
      for (unsigned t = 0; t < block; t++) {
        threadIdx.x = t;
        blockIdx.x = b;
        f();
      }
    }
    return;
  }
  for (unsigned b = 0; b < grid; b++) {
    std::barrier<> bar(block);
    sim_barrier = &bar;
    std::vector<std::thread> threads;
    threads.reserve(block);
    for (unsigned t = 0; t < block; t++) {
      threads.emplace_back([=] {
        threadIdx.x = t;
        blockIdx.x = b;
        f();
      });
    }
    for (auto& th : threads) th.join();
  }
}

#endif  // DETLAB_SIM_H
