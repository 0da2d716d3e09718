"""What the Flink sides of `weir-bench` measure of the PyFlink mini-cluster's JVM."""
import os


def jvm_peak_rss_mib():
    """VmHWM of the gateway JVM (a `java` child of this process), in MiB."""
    for d in os.listdir("/proc"):
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
            with open(f"/proc/{d}/status") as f:
                status = f.read()
        except (OSError, ValueError):
            continue
        if int(stat[stat.rfind(")") + 2:].split()[1]) == os.getpid() and "(java)" in stat:
            hwm = [line for line in status.splitlines() if line.startswith("VmHWM:")]
            return int(hwm[0].split()[1]) / 1024 if hwm else None
    return None
