package train

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// TensorBoard tags used by WriteTensorBoard, as SummaryWriter users log them:
// "loss/total", "loss/<torchvision key>", "lr", "amp/scale" and "grad_norm".
const (
	TagLoss     = "loss/total"
	TagLR       = "lr"
	TagScale    = "amp/scale"
	TagGradNorm = "grad_norm"
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// maskedCRC is TFRecord's masked CRC32C.
func maskedCRC(b []byte) uint32 {
	c := crc32.Checksum(b, crcTable)
	return ((c >> 15) | (c << 17)) + 0xa282ead8
}

// writeRecord frames data as a TFRecord: length, masked CRC of the length,
// data, masked CRC of the data (little endian).
func writeRecord(w *bufio.Writer, data []byte) error {
	var hdr [12]byte
	binary.LittleEndian.PutUint64(hdr[:8], uint64(len(data)))
	binary.LittleEndian.PutUint32(hdr[8:], maskedCRC(hdr[:8]))
	var foot [4]byte
	binary.LittleEndian.PutUint32(foot[:], maskedCRC(data))
	for _, b := range [][]byte{hdr[:], data, foot[:]} {
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// Event fields (tensorflow/core/util/event.proto): wall_time 1 (double),
// step 2 (int64), file_version 3 (string), summary 5 (Summary). Summary:
// value 1 (repeated Value); Value: tag 1 (string), simple_value 2 (float).
func eventBytes(wall float64, step int64, fileVersion string, scalars map[string]float64, order []string) []byte {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, math.Float64bits(wall))
	if step != 0 {
		b = protowire.AppendTag(b, 2, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(step))
	}
	if fileVersion != "" {
		b = protowire.AppendTag(b, 3, protowire.BytesType)
		b = protowire.AppendString(b, fileVersion)
	}
	if len(order) > 0 {
		var sum []byte
		for _, tag := range order {
			var v []byte
			v = protowire.AppendTag(v, 1, protowire.BytesType)
			v = protowire.AppendString(v, tag)
			v = protowire.AppendTag(v, 2, protowire.Fixed32Type)
			v = protowire.AppendFixed32(v, math.Float32bits(float32(scalars[tag])))
			sum = protowire.AppendTag(sum, 1, protowire.BytesType)
			sum = protowire.AppendBytes(sum, v)
		}
		b = protowire.AppendTag(b, 5, protowire.BytesType)
		b = protowire.AppendBytes(b, sum)
	}
	return b
}

// WriteTensorBoard writes the history as a TensorBoard event file in dir
// (created if needed), named as SummaryWriter names them
// (events.out.tfevents.<time>.<host>), so `tensorboard --logdir dir` shows
// the curves: one scalar event per step and tag. It returns the file's path.
func (h *History) WriteTensorBoard(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("train: tensorboard: %w", err)
	}
	host, _ := os.Hostname()
	if host == "" {
		host = "localhost"
	}
	now := time.Now()
	name := filepath.Join(dir, fmt.Sprintf("events.out.tfevents.%d.%s.%d.0", now.Unix(), host, os.Getpid()))
	f, err := os.Create(name)
	if err != nil {
		return "", fmt.Errorf("train: tensorboard: %w", err)
	}
	w := bufio.NewWriter(f)
	err = writeRecord(w, eventBytes(float64(now.UnixNano())/1e9, 0, "brain.Event:2", nil, nil))
	keys := h.LossKeys()
	for _, r := range h.Records {
		if err != nil {
			break
		}
		vals := map[string]float64{TagLR: r.LR, TagScale: r.Scale}
		var order []string
		for _, k := range keys {
			v, ok := r.Losses[k]
			if !ok {
				continue
			}
			tag := "loss/" + k
			if k == "loss" {
				tag = TagLoss
			}
			vals[tag] = float64(v)
			order = append(order, tag)
		}
		order = append(order, TagLR, TagScale)
		if !r.Skipped {
			vals[TagGradNorm] = r.GradNorm
			order = append(order, TagGradNorm)
		}
		err = writeRecord(w, eventBytes(r.WallTime, int64(r.Step), "", vals, order))
	}
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("train: tensorboard: %w", err)
	}
	return name, nil
}
