package ocispec

import (
	"reflect"
	"testing"

	"github.com/opencontainers/cgroups"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestPodTotalAndLimits(t *testing.T) {
	const mi = 1 << 20
	cases := []struct {
		name          string
		res, overhead *runtimeapi.LinuxContainerResources
		want          *runtimeapi.LinuxContainerResources
		limits        cgroups.Resources
	}{
		{
			name:     "sum plus overhead",
			res:      &runtimeapi.LinuxContainerResources{CpuPeriod: 100000, CpuQuota: 50000, CpuShares: 512, MemoryLimitInBytes: 256 * mi},
			overhead: &runtimeapi.LinuxContainerResources{CpuPeriod: 100000, CpuQuota: 10000, CpuShares: 64, MemoryLimitInBytes: 32 * mi},
			want:     &runtimeapi.LinuxContainerResources{CpuPeriod: 100000, CpuQuota: 60000, CpuShares: 576, MemoryLimitInBytes: 288 * mi},
			limits:   cgroups.Resources{CpuPeriod: 100000, CpuQuota: 60000, CpuShares: 576, Memory: 288 * mi},
		},
		{
			name:     "overhead quota scaled to the pod's period",
			res:      &runtimeapi.LinuxContainerResources{CpuPeriod: 50000, CpuQuota: 25000},
			overhead: &runtimeapi.LinuxContainerResources{CpuPeriod: 100000, CpuQuota: 10000},
			want:     &runtimeapi.LinuxContainerResources{CpuPeriod: 50000, CpuQuota: 30000},
			limits:   cgroups.Resources{CpuPeriod: 50000, CpuQuota: 30000, Memory: -1},
		},
		{
			name:   "no period means the default",
			res:    &runtimeapi.LinuxContainerResources{CpuQuota: 20000},
			want:   &runtimeapi.LinuxContainerResources{CpuPeriod: 100000, CpuQuota: 20000},
			limits: cgroups.Resources{CpuPeriod: 100000, CpuQuota: 20000, Memory: -1},
		},
		{
			name:     "unlimited stays unlimited despite an overhead",
			res:      &runtimeapi.LinuxContainerResources{CpuShares: 2},
			overhead: &runtimeapi.LinuxContainerResources{CpuQuota: 10000, MemoryLimitInBytes: 32 * mi},
			want:     &runtimeapi.LinuxContainerResources{CpuShares: 2},
			limits:   cgroups.Resources{CpuShares: 2, CpuQuota: -1, Memory: -1},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := PodTotal(c.res, c.overhead)
			if !proto.Equal(got, c.want) {
				t.Fatalf("PodTotal = %v, want %v", got, c.want)
			}
			if l := PodCgroupLimits(got); !reflect.DeepEqual(*l, c.limits) {
				t.Errorf("PodCgroupLimits = %+v, want %+v", *l, c.limits)
			}
		})
	}
}
