package bench

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// targetPullRatio: the large image's cold pull p50, at most this times the
// other runtime's (#16).
const targetPullRatio = 1.0

// MaxPullReps bounds the pull workload (each rep moves the image twice).
const MaxPullReps = 50

// PullResult is the cold pull of one image, repeated, per runtime name.
type PullResult struct {
	Image    string             `json:"image"`
	Reps     int                `json:"reps"`
	Runtimes map[string]Summary `json:"runtimes"`
}

// removeImage removes image if the runtime has it; a missing image is fine.
func (c *client) removeImage(ctx context.Context, image string) error {
	_, err := c.call(ctx, "RemoveImage "+image, func(ctx context.Context) error {
		_, err := c.img.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: image}})
		if status.Code(err) == codes.NotFound {
			return nil
		}
		return err
	})
	return err
}

// pullWorkload times reps cold pulls of image on every runtime: each rep
// removes the image (both runtimes delete its layers when no other image
// uses them) and pulls it again. The runtimes take turns, the first one
// alternating, and the image is removed from all of them at the end.
func (b *bench) pullWorkload(ctx context.Context, image string, reps int) (*PullResult, error) {
	samples := map[string][]time.Duration{}
	res := &PullResult{Image: image, Reps: reps, Runtimes: map[string]Summary{}}
	defer func() {
		for _, c := range b.clients {
			// Its own context, so that a cancelled run still removes the image.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.cfg.RPCTimeout)
			if err := c.removeImage(rctx, image); err != nil {
				b.log.Warn("remove the pull workload's image", "runtime", c.t.Name, "err", err)
			}
			cancel()
		}
		for n, s := range samples {
			res.Runtimes[n] = Summarize(s)
		}
	}()
	for i := 0; i < reps; i++ {
		order := slices.Clone(b.clients)
		if k := i % len(order); k > 0 {
			order = append(order[k:], order[:k]...)
		}
		for _, c := range order {
			if err := c.removeImage(ctx, image); err != nil {
				return res, err
			}
			d, err := c.pull(ctx, image)
			if err != nil {
				return res, err
			}
			b.log.Info("cold pull", "runtime", c.t.Name, "image", image, "rep", i+1, "ms", ms(d))
			samples[c.t.Name] = append(samples[c.t.Name], d)
		}
	}
	return res, nil
}

func (r *Report) writePull(b *strings.Builder, names []string) {
	p := r.Pull
	if p == nil {
		return
	}
	fmt.Fprintf(b, "\n== image pull: %s, cold (removed before each pull), n=%d per runtime\n", p.Image, p.Reps)
	for _, n := range names {
		s := p.Runtimes[n]
		fmt.Fprintf(b, "  %-11s p50 %s  max %s ms\n", n, ms(s.P50), ms(s.Max))
	}
	if len(names) == 2 {
		fmt.Fprintf(b, "  p50 %s/%s  %.2f\n", names[0], names[1], ratio(p.Runtimes[names[0]].P50, p.Runtimes[names[1]].P50))
	}
}
