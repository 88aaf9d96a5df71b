"""What the IPFIX collectors stored, in the shape of tcflows' records.

Flows are keyed (src_addr, dst_addr, src_port, dst_port, proto) with proto
named as in --jsonl and, for ICMP, type and code as the ports (Zeek's way).
"""
import json
import os
import signal
import subprocess

PROTOS = {1: "ICMP", 6: "TCP", 17: "UDP", 58: "ICMPv6"}


def nfdump_flows(directory):
    """(key, (in_packets, in_bytes, out_packets, out_bytes)) per nfdump record."""
    text = subprocess.run(["nfdump", "-R", directory, "-o", "json"], capture_output=True,
                          text=True, check=True).stdout
    if "No matching flows" in text:
        return []
    out = []
    for f in json.loads(text):
        proto = PROTOS.get(f["proto"], str(f["proto"]))
        sport, dport = f.get("src_port", 0), f.get("dst_port", 0)
        if proto.startswith("ICMP"):
            sport, dport = f.get("icmp_type", 0), f.get("icmp_code", 0)
        key = (f.get("src4_addr") or f.get("src6_addr"), f.get("dst4_addr") or f.get("dst6_addr"),
               sport, dport, proto)
        out.append((key, (f["in_packets"], f["in_bytes"], f["out_packets"], f["out_bytes"])))
    return out


def nfacctd_config(port, output):
    """An nfacctd configuration printing every flow as JSON lines to `output`."""
    return (f"daemonize: false\nnfacctd_ip: 127.0.0.1\nnfacctd_port: {port}\n"
            "nfacctd_pipe_size: 8000000\nplugins: print[out]\n"
            "aggregate[out]: src_host, dst_host, src_port, dst_port, proto, tcpflags, "
            "timestamp_start\n"
            f"print_output[out]: json\nprint_output_file[out]: {output}\n"
            "print_output_file_append[out]: true\nprint_refresh_time[out]: 1\n")


def pmacct_flows(path):
    """(key, (packets, bytes), tcp_flags) per line nfacctd printed. pmacct
    counts the forward direction only: it ignores RFC 5103 reverse elements."""
    if not os.path.exists(path):
        return []
    out = []
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            proto = {"ipv6-icmp": "ICMPv6"}.get(r["ip_proto"], r["ip_proto"].upper())
            sport, dport = r["port_src"], r["port_dst"]
            if proto.startswith("ICMP"):  # NetFlow's type << 8 | code in the port
                sport, dport = dport >> 8, dport & 0xff
            out.append(((r["ip_src"], r["ip_dst"], sport, dport, proto),
                        (r["packets"], r["bytes"]), r.get("tcp_flags")))
    return out


def summed(flows, width):
    """Per key, the element-wise sum of the first `width` counts."""
    out = {}
    for key, counts, *_ in flows:
        s = out.setdefault(key, [0] * width)
        for i in range(width):
            s[i] += counts[i]
    return out


def stop(process, timeout=10):
    """SIGTERM, then SIGKILL to its process group (nfacctd's plugins)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
