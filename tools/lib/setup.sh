# Shared by tools/run, tools/test and tools/bench: install what is missing
# from Debian 12, then build into build/. Sourced, not run.

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# The script that sourced this file, and its arguments, for as_root.
script="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
script_args=("$@")

# Build: compilers, the BPF tool chain, libraries.
build_packages=(clang llvm libbpf-dev bpftool libboost-dev libsqlite3-dev libfmt-dev
  doctest-dev libcli11-dev nlohmann-json3-dev libmnl-dev libcap-dev libcairo2-dev libssl-dev
  libpcap-dev meson ninja-build pkg-config g++ clang-format scdoc systemd)
# Tests: namespaces, traffic, captures and references.
test_packages=(iproute2 tcpdump tshark tcpreplay conntrack nftables iperf3 ethtool
  iputils-ping python3 sqlite3 libpcap-dev kmod
  nfdump pmacct prometheus # IPFIX collectors; promtool checks the metrics
  systemd # systemd-analyze checks the unit
  librsvg2-bin # rsvg-convert renders report --chart's SVG
  man-db bash-completion) # tests/package: man --warnings, completion
# Debian package (tools/package): debhelper's meson build, the checks.
package_packages=(dpkg-dev debhelper fakeroot lintian)
# Benchmarks (tools/bench): load, the peers compared, the chart, profiling.
bench_packages=(iproute2 ethtool util-linux procps python3 iperf3 softflowd pmacct tcpdump tshark
  gnuplot-nox bpftool linux-perf)

install_packages() {
  local missing=()
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' ||
      missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  as_root "installing ${missing[*]}"
  echo "tcflows: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  # tshark asks whether non-root users may capture; the default (no) is fine.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Goes on as root: at once when root, else runs the script again under sudo
# (which sets SUDO_USER, whom tools/run records as); without sudo, one line
# that says why root is needed, and exit 1.
as_root() {
  [ "$(id -u)" -eq 0 ] && return 0
  if command -v sudo >/dev/null 2>&1; then
    exec sudo -- "$script" "${script_args[@]}"
  fi
  echo "tcflows: $1 needs root: run tools/$(basename "$script") as root (sudo is not installed)" >&2
  exit 1
}

build() {
  if [ ! -f "$top/build/build.ninja" ]; then
    meson setup "$top/build" "$top" >/dev/null
  fi
  ninja -C "$top/build" >&2
}
