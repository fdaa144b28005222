#!/usr/bin/env bash
# Builds the tests' tiny bootable guest from Debian packages only:
#   OUTDIR/vmlinuz         the kernel of linux-image-cloud-amd64
#   OUTDIR/initramfs.gz    busybox-static, tests/guest/init, the virtio modules, and
#                          qemu-guest-agent's qemu-ga with the shared libraries ldd names
#                          (newc cpio, gzip)
#   OUTDIR/stamp           the inputs they were built from
# Usage: tests/guest/build-guest.sh OUTDIR
# Idempotent: when OUTDIR already holds a build of the same inputs (these files and the package
# versions apt would pick) it returns at once. Nothing is installed on the host: the packages are
# fetched with `apt-get download` and unpacked with `dpkg-deb -x` into a temporary directory.
# qemu-ga's libraries (glib, libudev, liburing, libnuma, libc…) are copied from the host, where
# ldd finds them: a Debian 12 host running libvirt and QEMU has every one.
# Needs: apt, dpkg-deb, cpio, gzip, flock, ldd (Debian: apt, dpkg, cpio, gzip, util-linux,
# libc-bin).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KERNEL_META=linux-image-cloud-amd64
BUSYBOX=busybox-static
AGENT=qemu-guest-agent
# What the guest needs; their dependencies (virtio, virtio_ring, failover...) are found from these.
MODULES=(virtio_pci virtio_balloon virtio_blk virtio_net virtio_console)

log() { printf 'build-guest: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

(($# == 1)) || {
    echo "usage: $0 OUTDIR" >&2
    exit 2
}
out=$1
declare -A package_of=([apt-get]=apt [apt-cache]=apt [dpkg-deb]=dpkg [cpio]=cpio [gzip]=gzip
    [flock]=util-linux [sha256sum]=coreutils [ldd]=libc-bin)
for tool in "${!package_of[@]}"; do
    command -v "$tool" >/dev/null || die "$tool not found (Debian package: ${package_of[$tool]})"
done
mkdir -p "$out"
out=$(cd "$out" && pwd)

# One build at a time per OUTDIR (tests of several processes may ask together).
exec 9>"$out/.lock"
flock 9

# resolve: sets image (the versioned kernel package), image_version, busybox_version and
# agent_version, the versions apt would install. (Two apt-cache calls: each takes about half a
# second.)
resolve() {
    image=$(apt-cache depends "$KERNEL_META" 2>/dev/null |
        awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')
    image_version='' busybox_version='' agent_version=''
    [[ -n $image ]] || return 1
    local pkg version
    # Package names start a line of `apt-cache policy`; their fields are indented.
    while read -r pkg version; do
        [[ $version != "(none)" ]] || continue
        [[ $pkg != "$image" ]] || image_version=$version
        [[ $pkg != "$BUSYBOX" ]] || busybox_version=$version
        [[ $pkg != "$AGENT" ]] || agent_version=$version
    done < <(apt-cache policy "$image" "$BUSYBOX" "$AGENT" 2>/dev/null |
        awk '/^[^ ]/ { pkg = substr($1, 1, length($1) - 1) } $1 == "Candidate:" { print pkg, $2 }')
    [[ -n $image_version && -n $busybox_version && -n $agent_version ]]
}

# What the guest is built from besides the packages.
local_inputs=$(
    printf 'modules=%s\n' "${MODULES[*]}"
    sha256sum "$here/build-guest.sh" "$here/init" | awk '{ print $1 }'
)
built() { [[ -s $out/vmlinuz && -s $out/initramfs.gz && -s $out/stamp ]]; }

if ! resolve; then
    # No package lists (apt-get update never ran): a build of the same local inputs will do
    # rather than touching the network; else fetch the lists.
    if built && [[ $(tail -n +4 "$out/stamp") == "$local_inputs" ]]; then
        log "apt cannot resolve $KERNEL_META/$BUSYBOX; reusing $out ($(head -n1 "$out/stamp"))"
        exit 0
    fi
    log "apt-get update (no package lists for $KERNEL_META/$BUSYBOX)"
    apt-get update -q >&2 || die "apt-get update failed"
    resolve || die "apt knows no $KERNEL_META or $BUSYBOX"
fi

stamp() {
    printf '%s=%s\n%s=%s\n%s=%s\n%s\n' "$image" "$image_version" "$BUSYBOX" "$busybox_version" \
        "$AGENT" "$agent_version" "$local_inputs"
}
if built && [[ $(cat "$out/stamp") == "$(stamp)" ]]; then
    exit 0
fi
log "building $image $image_version + $BUSYBOX $busybox_version into $out"

work=$(mktemp -d "${TMPDIR:-/tmp}/vmt-guest.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/debs" "$work/pkg" "$work/root"
# apt's sandbox user must be able to write where it downloads, else apt warns and runs as root.
chmod 755 "$work"
chmod 777 "$work/debs"
download() {
    (cd "$work/debs" && apt-get download -q "$image=$image_version" "$BUSYBOX=$busybox_version" \
        "$AGENT=$agent_version" >&2)
}
if ! download; then
    # Old package lists name versions the mirror no longer has (kernels move on quickly).
    log "apt-get download failed; apt-get update and again"
    apt-get update -q >&2 || die "apt-get update failed"
    resolve || die "apt knows no $KERNEL_META or $BUSYBOX"
    download || die "apt-get download $image=$image_version $BUSYBOX=$busybox_version failed"
fi
for deb in "$work"/debs/*.deb; do
    dpkg-deb -x "$deb" "$work/pkg"
done

kver=${image#linux-image-}
vmlinuz=$work/pkg/boot/vmlinuz-$kver
moddir=$work/pkg/lib/modules/$kver
[[ -s $vmlinuz ]] || die "$image has no /boot/vmlinuz-$kver"
[[ -x $work/pkg/bin/busybox ]] || die "$BUSYBOX has no /bin/busybox"
[[ -x $work/pkg/usr/sbin/qemu-ga ]] || die "$AGENT has no /usr/sbin/qemu-ga"

# The package has no modules.dep (depmod makes it on install, and kmod may not be here):
# each module's own `depends=` (its .modinfo section) gives the load order.
declare -A path=() seen=()
while IFS= read -r -d '' file; do
    name=${file##*/}
    name=${name%.ko}
    path[${name//-/_}]=$file
done < <(find "$moddir" -name '*.ko' -print0)
order=()
# add NAME: NAME's dependencies, then NAME, each once.
add() {
    local name=${1//-/_} deps dep
    [[ -z ${seen[$name]:-} ]] || return 0
    seen[$name]=1
    [[ -n ${path[$name]:-} ]] || die "no $name.ko in $image"
    deps=$(tr '\0' '\n' <"${path[$name]}" | sed -n 's/^depends=//p' | head -n1)
    for dep in ${deps//,/ }; do add "$dep"; done
    order+=("$name")
}
for name in "${MODULES[@]}"; do add "$name"; done

root=$work/root
mkdir -p "$root"/{bin,dev,proc,sys,mnt,lib/modules}
cp "$work/pkg/bin/busybox" "$root/bin/busybox"
# Applets as links, so the init script reads like any shell script.
for applet in $("$root/bin/busybox" --list); do
    [[ $applet == busybox ]] || ln -s busybox "$root/bin/$applet"
done
install -m 755 "$here/init" "$root/init"
# qemu-ga and what its dynamic loader needs, from where ldd finds it on this (Debian) host.
cp "$work/pkg/usr/sbin/qemu-ga" "$root/bin/qemu-ga"
libs=$(ldd "$root/bin/qemu-ga") || die "ldd qemu-ga failed"
! grep -q 'not found' <<<"$libs" || die "qemu-ga's libraries are missing here: $libs"
mkdir -p "$root/lib/x86_64-linux-gnu" "$root/lib64" "$root/etc"
for lib in $(awk '$2 == "=>" && $3 ~ /^\// { print $3 }' <<<"$libs"); do
    cp -L "$lib" "$root/lib/x86_64-linux-gnu/${lib##*/}"
done
loader=$(awk '$1 ~ /^\/.*ld-linux/ { print $1 }' <<<"$libs")
[[ -n $loader ]] || die "no dynamic loader in ldd qemu-ga: $libs"
cp -L "$loader" "$root/lib64/${loader##*/}"
# What the agent's guest-get-osinfo reads (os_id, os_version in vm_guest_info).
printf 'ID=vmt-test-guest\nNAME="vmtelemetry test guest"\nVERSION_ID=1\n' >"$root/etc/os-release"
for name in "${order[@]}"; do
    cp "${path[$name]}" "$root/lib/modules/$name.ko"
done
printf '%s.ko\n' "${order[@]}" >"$root/lib/modules/load-order"
# The kernel opens /dev/console before /init runs (init also remounts /dev as devtmpfs).
mknod -m 600 "$root/dev/console" c 5 1 2>/dev/null || true

(cd "$root" && find . -mindepth 1 -print0 | LC_ALL=C sort -z |
    cpio --null --create --format=newc --owner=0:0 --quiet) | gzip -9n >"$work/initramfs.gz"

# Publish atomically, the stamp last: a half-written OUTDIR never passes for a finished one.
rm -f "$out/stamp"
cp "$vmlinuz" "$out/.vmlinuz.new"
cp "$work/initramfs.gz" "$out/.initramfs.gz.new"
mv -f "$out/.vmlinuz.new" "$out/vmlinuz"
mv -f "$out/.initramfs.gz.new" "$out/initramfs.gz"
stamp >"$out/.stamp.new"
mv -f "$out/.stamp.new" "$out/stamp"
log "done: $out/vmlinuz ($(stat -c %s "$out/vmlinuz") bytes), $out/initramfs.gz ($(stat -c %s "$out/initramfs.gz") bytes), modules: ${order[*]}"
