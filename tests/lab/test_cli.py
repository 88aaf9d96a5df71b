#!/usr/bin/env python3
"""Lab: command-line and attach errors of `tcflows record`.

Each error is one line on stderr (`tcflows: error: ...`) with a non-zero exit
(2 for bad input), leaves no TC state behind, and a failing second instance
does not disturb the first, which goes on counting every packet exactly.
"""


import tcflows_lab as L


def attempt(lab, argv, timeout=15):
    """Runs a tcflows command that should fail, in namespace a."""
    try:
        return L.run(argv, ns=lab.ns["a"], check=False, timeout=timeout)
    except L.LabError as e:
        raise L.Failure(f"`{' '.join(map(str, argv))}` kept running: {e}")


def expect_no_tc_state(lab, what):
    dev = lab.dev["a"]
    qdiscs = L.run(["tc", "qdisc", "show", "dev", dev], ns=lab.ns["a"]).stdout
    filters = [L.run(["tc", "filter", "show", "dev", dev, hook], ns=lab.ns["a"]).stdout.strip()
               for hook in ("ingress", "egress")]
    L.check("clsact" not in qdiscs and filters == ["", ""],
            f"{what} left TC state: {qdiscs.strip()} {filters}")


def test_unknown_interface(binary):
    """An unknown interface: one line naming it, exit 2."""
    with L.Lab() as lab:
        p = attempt(lab, [binary, "record", "-i", "tl-nosuch0"])
        L.expect_error(p, "unknown interface", code=2, mentions=("tl-nosuch0",))
        expect_no_tc_state(lab, "unknown interface")


def test_usage_errors(binary):
    """Bad option values: one line each, exit 2, nothing attached."""
    with L.Lab() as lab:
        dev = lab.dev["a"]
        for args in (["--interval", "0"], ["--interval", "soon"], ["--format", "xml"],
                     ["--max-flows", "1"], ["--ringbuf-size", "5000"], ["--no-such-option"]):
            p = attempt(lab, [binary, "record", "-i", dev, *args])
            L.expect_error(p, " ".join(args), code=2)
        expect_no_tc_state(lab, "usage errors")


def test_second_instance(binary):
    """A second `tcflows record` on the same interface fails; the first counts on."""
    seen = {}

    def traffic(lab):
        L.ping(lab, "a", lab.addr4["b"], count=3)
        p = attempt(lab, [binary, "record", "-i", lab.dev["a"], "--format", "json"])
        # "tcflows is already attached to IF"; with interface locks
        # "another tcflows record is recording on IF".
        L.expect_error(p, "second instance", mentions=(lab.dev["a"],),
                       pattern=r"tcflows (is already attached|record .*is recording) ")
        filters = [L.run(["tc", "filter", "show", "dev", lab.dev["a"], hook],
                         ns=lab.ns["a"]).stdout for hook in ("ingress", "egress")]
        seen["filters"] = [sum("tcflows_" in line for line in f.splitlines()) for f in filters]
        L.ping(lab, "a", lab.addr4["b"], count=4)
        L.ping(lab, "b", lab.addr6["a"], count=2)

    with L.Lab() as lab:
        obs = L.observe(binary, lab, traffic)
        L.check(seen["filters"] == [1, 1],
                f"after the second instance failed, the first's filters are {seen['filters']}")
        echo = [f for f in obs.frames if f.key.proto in ("ICMP", "ICMPv6")
                and f.key.sport == f.key.dport]
        L.check(len(echo) == 2 * (3 + 4 + 2), f"the capture has {len(echo)} echo packets")
        print("  the first instance, compared with the capture:")
        L.compare_flows(L.capture_flows(obs.frames), L.snapshot_flows(obs.snapshot, lab.dev["a"]),
                        max_rows=12)


def test_not_root(binary):
    """Without root (user nobody, no capabilities): one line, non-zero exit."""
    with L.Lab() as lab:
        copy = L.reachable_copy(binary)
        p = attempt(lab, L.NOBODY + [copy, "--help"])
        if p.returncode != 0:
            raise L.LabError(f"user nobody cannot run {copy}: {L.tail(p.stderr, 2)}")
        p = attempt(lab, L.NOBODY + [copy, "record", "-i", lab.dev["a"]])
        L.expect_error(p, "as nobody", mentions=("root",))
        expect_no_tc_state(lab, "as nobody")


if __name__ == "__main__":
    L.main([test_unknown_interface, test_usage_errors, test_second_instance, test_not_root])
