# Shared by tools/run, tools/test and tools/bench: install what is missing
# from Debian 12, then build into build/. Sourced, not run.

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# Build: compilers, the BPF tool chain, libraries.
build_packages=(clang llvm libbpf-dev bpftool libboost-dev libsqlite3-dev libfmt-dev
  doctest-dev libcli11-dev nlohmann-json3-dev libmnl-dev libcap-dev libcairo2-dev meson
  ninja-build pkg-config g++ clang-format)
# Tests: namespaces, traffic, captures and references.
test_packages=(iproute2 tcpdump tshark tcpreplay conntrack nftables iperf3 ethtool
  iputils-ping python3 sqlite3 libpcap-dev kmod
  nfdump pmacct prometheus # IPFIX collectors; promtool checks the metrics
  systemd # systemd-analyze checks tools/tcflows.service
  librsvg2-bin) # rsvg-convert renders report --chart's SVG
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
  if [ "$(id -u)" -ne 0 ]; then
    echo "tcflows: missing Debian packages: ${missing[*]}; run this with sudo" >&2
    exit 1
  fi
  echo "tcflows: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  # tshark asks whether non-root users may capture; the default (no) is fine.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

build() {
  if [ ! -f "$top/build/build.ninja" ]; then
    meson setup "$top/build" "$top" >/dev/null
  fi
  ninja -C "$top/build" >&2
}
