#!/usr/bin/env bash
# benches/seed_guests.sh up|down (as root, after scripts/test-env.sh up): 12 firmware-only KVM
# guests and the kernel guest, made as benches/libvirt.sh makes them, left running for
# benches/seed_pair.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
w=/var/tmp/vmt-exp-guests
if [[ $1 == down ]]; then
  for g in $(virsh -q -c qemu:///system list --name | grep '^vmt-exp-'); do virsh -q -c qemu:///system destroy "$g" >/dev/null; done
  rm -rf "$w"; exit 0
fi
mkdir -p "$w"
devices() {
    qemu-img create -q -f qcow2 "$w/$1.qcow2" 16M
    printf "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='%s'/><target dev='vda' bus='virtio'/></disk>" "$w/$1.qcow2"
    printf "<interface type='ethernet'><target dev='%s'/><model type='virtio'/><rom enabled='no'/></interface>" "$2"
}
for ((i = 1; i <= 12; i++)); do
    g="vmt-exp-$i"
    printf "<domain type='kvm'><name>%s</name><memory unit='MiB'>48</memory><vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os><devices><controller type='usb' model='none'/>%s<memballoon model='virtio'/></devices></domain>\n" "$g" "$(devices "$g" "vmtex$i")" >"$w/$g.xml"
    virsh -q -c qemu:///system create "$w/$g.xml" >/dev/null
done
kernel_dir=/var/tmp/vmtelemetry-test/guest
bash tests/guest/build-guest.sh "$kernel_dir" >/dev/null
g="vmt-exp-kernel"
printf "<domain type='qemu'><name>%s</name><memory unit='MiB'>160</memory><vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type><kernel>%s</kernel><initrd>%s</initrd><cmdline>console=ttyS0 edd=off vmt.work=disk,net</cmdline></os><on_poweroff>destroy</on_poweroff><on_reboot>destroy</on_reboot><on_crash>destroy</on_crash><devices><controller type='usb' model='none'/>%s<serial type='file'><source path='%s'/><target port='0'/></serial><memballoon model='virtio'><stats period='2'/></memballoon></devices></domain>\n" \
    "$g" "$kernel_dir/vmlinuz" "$kernel_dir/initramfs.gz" "$(devices "$g" "vmtexk")" "$w/$g.console" >"$w/$g.xml"
virsh -q -c qemu:///system create "$w/$g.xml" >/dev/null
until grep -q '^VMT-GUEST-UP' "$w/$g.console" 2>/dev/null; do sleep 0.5; done
echo up
