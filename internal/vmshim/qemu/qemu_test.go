package qemu

import (
	"strings"
	"testing"
)

func TestArgs(t *testing.T) {
	c := Config{Name: "cradle-x", CPUs: 2, MemoryMiB: 512, Kernel: "/boot/k", Initrd: "/c/i.img", StateDir: "/s",
		ShareDir: "/s/share", NetFD: 3, MAC: "02:00:00:00:00:01", AgentFD: 4}
	got := strings.Join(c.Args(), " ")
	for _, want := range []string{
		"-machine pc,accel=tcg", "-cpu max", "-smp 2", "-m 512", "-kernel /boot/k", "-initrd /c/i.img",
		"-serial file:/s/console.log", "-chardev socket,id=agent,fd=4,server=on,wait=off",
		"virtserialport,bus=vser0.0,chardev=agent,name=cradle.agent",
		"-netdev tap,id=net0,fd=3", "virtio-net-pci,netdev=net0,romfile=,mac=02:00:00:00:00:01",
		"-fsdev local,id=share0,path=/s/share,security_model=passthrough", "virtio-9p-pci,fsdev=share0,mount_tag=cradleshare",
		"-no-reboot", "-nodefaults",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("args lack %q:\n%s", want, got)
		}
	}
	min := strings.Join(Config{Accel: "kvm", StateDir: "/s"}.Args(), " ")
	for _, want := range []string{"accel=kvm", "-cpu host", "-smp 1", "-m 64", "path=/s/agent.sock"} {
		if !strings.Contains(min, want) {
			t.Errorf("args lack %q:\n%s", want, min)
		}
	}
	for _, not := range []string{"-netdev", "-fsdev"} {
		if strings.Contains(min, not) {
			t.Errorf("args without NIC or share have %s:\n%s", not, min)
		}
	}
}
