"""Test beds for the benchmark: a broker (the null sink, or tansu with in-memory storage) and the
hop in front of it for one path, started fresh per measurement, plus what the measurements read
from /proc (CPU seconds of all threads, resident memory) and the throw-away TLS certificates.

Paths: `direct`, `haproxy` (TCP mode), `proxy` (kafka-durability-proxy, enforcing), `proxy:NAME`
(another proxy binary, given with --proxy-bin NAME=PATH), `proxy-audit` (audit-only policy),
`tansu-proxy` (tansu target only), and the TLS paths `direct-tls` (TLS straight to the broker)
and `proxy-tls` (TLS from the client to the proxy and from the proxy to the broker). tansu 0.6
cannot serve TLS itself, so on the tansu target the broker's TLS is haproxy terminating it in
front of tansu (test-bed notes); that haproxy belongs to the broker side, not to the hop."""

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Where bench/run.sh's cargo build put the binaries (it honours CARGO_TARGET_DIR).
RELEASE = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target") / "release"
NULLSINK_BIN = RELEASE / "examples" / "nullsink"
TANSU = shutil.which("tansu") or str(Path.home() / ".cargo" / "bin" / "tansu")
CLK = os.sysconf("SC_CLK_TCK")
# The broker's node id on both targets (tansu's is fixed at 111), so proxy configs are alike.
NODE = 111


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, what, proc=None, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode} before listening on {port}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{what} never listened on {port}")


def cpu_seconds(pid):
    """utime + stime of a process (all threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def status_kib(pid, key):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def idle_rss_kib(bed, count, settle=3.0, prepare=None):
    """The hop's RSS (KiB) before and after `count` client connections to its bootstrap port,
    `settle` seconds after `prepare(sockets)` (if any) ran; the connections are closed after."""
    socks = []
    try:
        time.sleep(0.5)
        base = status_kib(bed.hop_pid, "VmRSS")
        for _ in range(count):
            socks.append(socket.create_connection(("127.0.0.1", bed.bootstrap)))
        if prepare:
            prepare(socks)
        time.sleep(settle)
        return base, status_kib(bed.hop_pid, "VmRSS")
    finally:
        for s in socks:
            s.close()


def make_certs(work):
    """A CA and a server certificate for 127.0.0.1 and localhost (EC P-256), with openssl.
    Returns {ca, cert, key, combined}; combined is certificate then key, as haproxy wants."""
    work.mkdir(parents=True, exist_ok=True)
    run = lambda *argv: subprocess.run(argv, cwd=work, check=True, capture_output=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run("openssl", "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "30", "-subj", "/CN=bench CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("openssl", "req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
    (work / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                                     "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n")
    run("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.pem", "-days", "30", "-extfile", "server.ext")
    (work / "combined.pem").write_text((work / "server.pem").read_text() + (work / "server.key").read_text())
    return {k: str(work / f) for k, f in
            [("ca", "ca.pem"), ("cert", "server.pem"), ("key", "server.key"), ("combined", "combined.pem")]}


def proxy_accepts_admin_key(binary, work):
    """Builds before the admin endpoint (commit d131b2c) refuse an `admin:` section."""
    cfg = work / f"check-{abs(hash(binary))}.yaml"
    cfg.write_text(proxy_yaml(free_port(), free_port(), free_port(), "upgrade", None, work, admin=True))
    out = subprocess.run([binary, "--check-config", str(cfg)], capture_output=True, text=True)
    return out.returncode == 0


def proxy_yaml(bootstrap, node_port, broker, action, certs, work, admin):
    listen_tls = (f"  tls:\n    cert_file: {certs['cert']}\n    key_file: {certs['key']}\n") if certs else ""
    upstream_tls = f"  tls:\n    ca_file: {certs['ca']}\n" if certs else ""
    return (f"listen:\n  bind_host: 127.0.0.1\n  advertised_host: 127.0.0.1\n  bootstrap_port: {bootstrap}\n"
            f"  broker_ports: {{{NODE}: {node_port}}}\n{listen_tls}"
            f"upstream:\n  bootstrap_servers: ['127.0.0.1:{broker}']\n{upstream_tls}"
            f"policies:\n  produce_acks:\n    action: {action}\n"
            f"audit:\n  sink: file\n  path: {work / 'audit.jsonl'}\n" + ("admin:\n  listen: null\n" if admin else ""))


class Bed:
    """The broker side and the hop of one path. `bootstrap` is what clients use, `endpoint` the
    broker side's own address (the probe's paired baseline), `tls` whether clients speak TLS.
    `proxies` maps a proxy path name to (binary, accepts admin key)."""

    def __init__(self, target, path, work, certs, proxies):
        self.target, self.path, self.work, self.procs = target, path, work, []
        self.hop_pid = self.broker_pid = None
        self.tls = path.endswith("-tls")
        self.certs = certs if self.tls else None
        hop = "none" if path.startswith("direct") else "haproxy" if path == "haproxy" else \
            "tansu-proxy" if path == "tansu-proxy" else "proxy"
        self.hop_port = free_port() if hop != "none" else None
        self._start_broker(advertise_hop=(hop == "haproxy"))
        self.bootstrap = self.hop_port or self.endpoint
        if hop == "haproxy":
            self.hop_pid = self._haproxy("haproxy", self.hop_port, self.endpoint, None)
        elif hop == "tansu-proxy":
            self.hop_pid = self._spawn("tansu-proxy", [
                TANSU, "proxy", "--listener-url", f"tcp://127.0.0.1:{self.hop_port}",
                "--advertised-listener-url", f"tcp://127.0.0.1:{self.hop_port}",
                "--origin-url", f"tcp://127.0.0.1:{self.endpoint}"])
        elif hop == "proxy":
            self._proxy(proxies)
        if self.hop_pid:
            wait_port(self.hop_port, path, self.procs[-1])

    def _start_broker(self, advertise_hop):
        """The null sink, or tansu (behind a TLS-terminating haproxy when the path is TLS)."""
        port = free_port()
        if self.target == "nullsink":
            advertised = self.hop_port if advertise_hop else port
            argv = [str(NULLSINK_BIN), "--listen", f"127.0.0.1:{port}", "--advertise", f"127.0.0.1:{advertised}",
                    "--node-id", str(NODE), "--fetch-records", "1000", "--record-size", "1024"]
            if self.certs:
                argv += ["--tls-cert", self.certs["cert"], "--tls-key", self.certs["key"]]
            self.broker_pid = self._spawn("nullsink", argv)
            self.endpoint = port
            wait_port(port, "nullsink", self.procs[-1])
            return
        tls_port = free_port() if self.certs else None
        advertised = self.hop_port if advertise_hop else tls_port or port
        self.broker_pid = self._spawn("tansu", [
            TANSU, "broker", "--listener-url", f"tcp://127.0.0.1:{port}",
            "--advertised-listener-url", f"tcp://127.0.0.1:{advertised}", "--storage-engine", "memory://tansu/"])
        wait_port(port, "tansu", self.procs[-1])
        self.endpoint = port
        if tls_port:
            self._haproxy("haproxy-tls", tls_port, port, self.certs["combined"])
            wait_port(tls_port, "haproxy (TLS in front of tansu)", self.procs[-1])
            self.endpoint = tls_port

    def _haproxy(self, name, listen, backend, crt):
        cfg = self.work / f"{name}.cfg"
        ssl = f" ssl crt {crt}" if crt else ""
        cfg.write_text(
            "global\n  maxconn 5000\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 120s\n"
            f"  timeout server 120s\nfrontend f\n  bind 127.0.0.1:{listen}{ssl}\n  default_backend b\n"
            f"backend b\n  server s1 127.0.0.1:{backend}\n")
        return self._spawn(name, ["haproxy", "-db", "-f", str(cfg)])

    def _proxy(self, proxies):
        name = "proxy" if self.path in ("proxy-tls", "proxy-audit") else self.path
        binary, admin = proxies[name]
        node_port = free_port()
        action = "audit" if self.path == "proxy-audit" else "upgrade"
        cfg = self.work / "proxy.yaml"
        cfg.write_text(proxy_yaml(self.hop_port, node_port, self.endpoint, action, self.certs, self.work, admin))
        self.hop_pid = self._spawn("proxy", [binary, "--config", str(cfg)], env={"RUST_LOG": "warn"})
        wait_port(node_port, "proxy broker listener", self.procs[-1])

    def _spawn(self, name, argv, env=None):
        log = open(self.work / f"{name}.log", "w")
        p = subprocess.Popen(argv, cwd=self.work, stdout=log, stderr=subprocess.STDOUT,
                             env={**os.environ, **(env or {})})
        self.procs.append(p)
        return p.pid

    def hop_cpu(self):
        return cpu_seconds(self.hop_pid) if self.hop_pid else 0.0

    def broker_cpu(self):
        return cpu_seconds(self.broker_pid)

    def hop_peak_rss_kib(self):
        return status_kib(self.hop_pid, "VmHWM") if self.hop_pid else 0

    def log(self, name):
        path = self.work / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self):
        for p in reversed(self.procs):
            p.terminate()
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
