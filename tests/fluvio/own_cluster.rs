//! A loopback Fluvio cluster that one test starts, owns and may break: an
//! SC and one SPU run from the `fluvio-run` binary named by
//! `HOTSPOT_FLUVIO_RUN`, on free 127.0.0.1 ports, in a temporary
//! directory, optionally with mutual TLS from certificates that the
//! `openssl` command makes for the occasion. Dropping it stops both.
//!
//! Why a cluster of its own: the tests that cut the connection (kill the
//! SPU, start it again) or need TLS must not do that to a cluster they were
//! lent through `HOTSPOT_FLUVIO_ENDPOINT`. `fluvio-run` is built from the
//! upstream repository outside this project (`docs/fluvio.md`); nothing of
//! Fluvio is in this repository.

use std::ffi::OsString;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hotspot::fluvio_client::{FluvioCluster, FluvioTls, blocking};

use crate::support::free_ports;

/// The name on the test certificates: the SC's, and `*.fluvio.local` for
/// the SPUs (the client checks an SPU as `custom-spu-<id>.<domain>`).
pub const DOMAIN: &str = "fluvio.local";

const SPU_ID: i32 = 5001;

/// The `fluvio-run` binary. A test that needs it is `#[ignore]`d; run
/// without it (`--include-ignored`), it fails here.
pub fn fluvio_run() -> PathBuf {
    match std::env::var_os("HOTSPOT_FLUVIO_RUN") {
        Some(p) if !p.is_empty() => {
            let p = PathBuf::from(p);
            assert!(
                p.is_file(),
                "HOTSPOT_FLUVIO_RUN={} is not a file",
                p.display()
            );
            p
        }
        _ => panic!(
            "HOTSPOT_FLUVIO_RUN is not set: this test needs the path of a fluvio-run binary built from the upstream repository (see docs/fluvio.md); it starts, breaks and stops a loopback cluster of its own"
        ),
    }
}

/// The files of a test certificate authority, a server certificate for
/// [`DOMAIN`], `*.DOMAIN` and 127.0.0.1, and a client certificate.
pub struct Certs {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("the openssl command (Debian package openssl) makes the test certificates");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`ca_name`) and certificates signed by it, in `dir`.
pub fn make_certs(dir: &Path, ca_name: &str) -> Certs {
    std::fs::create_dir_all(dir).unwrap();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut a = vec!["req", "-x509"];
    a.extend(ec);
    a.extend(["-keyout", "ca.key", "-out", "ca.crt", "-days", "30"]);
    let subj = format!("/CN={ca_name}");
    a.extend(["-subj", &subj]);
    openssl(dir, &a);
    for (who, cn, san, usage) in [
        (
            "server",
            DOMAIN,
            format!("DNS:{DOMAIN},DNS:*.{DOMAIN},IP:127.0.0.1"),
            "serverAuth",
        ),
        ("client", "hotspot", "DNS:hotspot".to_owned(), "clientAuth"),
    ] {
        let (key, csr, crt, ext) = (
            format!("{who}.key"),
            format!("{who}.csr"),
            format!("{who}.crt"),
            format!("{who}.ext"),
        );
        let subj = format!("/CN={cn}");
        let mut a = vec!["req"];
        a.extend(ec);
        a.extend(["-keyout", &key, "-out", &csr, "-subj", &subj]);
        openssl(dir, &a);
        std::fs::write(
            dir.join(&ext),
            format!(
                "subjectAltName={san}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage={usage}\n"
            ),
        )
        .unwrap();
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &crt,
                "-days",
                "30",
                "-extfile",
                &ext,
            ],
        );
    }
    Certs {
        ca: dir.join("ca.crt"),
        server_cert: dir.join("server.crt"),
        server_key: dir.join("server.key"),
        client_cert: dir.join("client.crt"),
        client_key: dir.join("client.key"),
    }
}

pub struct OwnCluster {
    pub dir: tempfile::TempDir,
    /// What hotspot connects to (TLS when the cluster has it).
    pub cluster: FluvioCluster,
    run: PathBuf,
    sc: Child,
    spu: Option<Child>,
    spu_args: Vec<OsString>,
    spu_public: String,
}

fn wait_port(what: &str, addr: &str, child: &mut Child, log: &Path) {
    let t0 = Instant::now();
    while TcpStream::connect(addr).is_err() {
        if let Ok(Some(st)) = child.try_wait() {
            panic!(
                "{what} exited ({st}): {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "{what} does not listen on {addr}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn tls_args(c: &Certs, non_tls_public: &str) -> Vec<OsString> {
    vec![
        "--tls".into(),
        "--server-cert".into(),
        c.server_cert.clone().into(),
        "--server-key".into(),
        c.server_key.clone().into(),
        "--enable-client-cert".into(),
        "--ca-cert".into(),
        c.ca.clone().into(),
        "--bind-non-tls-public".into(),
        non_tls_public.into(),
    ]
}

fn spawn(run: &Path, args: &[OsString], log: &Path) -> Child {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    Command::new(run)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap()
}

impl OwnCluster {
    /// Starts an SC and an SPU (with mutual TLS when `tls`), registers the
    /// SPU and waits until a topic can be created and read.
    pub fn start(run: &Path, tls: bool) -> OwnCluster {
        let dir = tempfile::tempdir().unwrap();
        let certs = tls.then(|| make_certs(&dir.path().join("tls"), "hotspot test CA"));
        let addr = |p: u16| format!("127.0.0.1:{p}");
        // Six different ports (four in use without TLS), chosen together.
        let ports = free_ports::<6>();
        let (sc_public, sc_private) = (addr(ports[0]), addr(ports[1]));
        let (spu_public, spu_private) = (addr(ports[2]), addr(ports[3]));
        // With TLS, setup (registering the SPU) talks to the non-TLS
        // listeners; hotspot is only given the TLS ones.
        let sc_plain = if tls {
            addr(ports[4])
        } else {
            sc_public.clone()
        };
        let mut sc_args: Vec<OsString> = vec![
            "sc".into(),
            "--local".into(),
            dir.path().join("sc").into(),
            "--bind-public".into(),
            sc_public.clone().into(),
            "--bind-private".into(),
            sc_private.clone().into(),
        ];
        let mut spu_args: Vec<OsString> = vec![
            "spu".into(),
            "-i".into(),
            SPU_ID.to_string().into(),
            "-p".into(),
            spu_public.clone().into(),
            "-v".into(),
            spu_private.clone().into(),
            "--sc-addr".into(),
            sc_private.into(),
            "--log-base-dir".into(),
            dir.path().join("spu").into(),
        ];
        if let Some(c) = &certs {
            sc_args.extend(tls_args(c, &sc_plain));
            spu_args.extend(tls_args(c, &addr(ports[5])));
        }
        let sc_log = dir.path().join("sc.log");
        let mut sc = spawn(run, &sc_args, &sc_log);
        wait_port("fluvio-run sc", &sc_plain, &mut sc, &sc_log);
        let plain = FluvioCluster::plain(sc_plain);
        let t0 = Instant::now();
        loop {
            match blocking::register_spu(&plain, SPU_ID, &spu_public, &spu_private) {
                Ok(_) => break,
                Err(e) if t0.elapsed() > Duration::from_secs(30) => {
                    panic!("cannot register the SPU: {e:#}")
                }
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
        let cluster = FluvioCluster {
            endpoint: sc_public,
            tls: match &certs {
                None => FluvioTls::Off,
                Some(c) => FluvioTls::Verified {
                    domain: DOMAIN.into(),
                    ca_cert: c.ca.clone(),
                    cert: c.client_cert.clone(),
                    key: c.client_key.clone(),
                },
            },
        };
        let mut own = OwnCluster {
            dir,
            cluster,
            run: run.to_owned(),
            sc,
            spu: None,
            spu_args,
            spu_public,
        };
        own.start_spu();
        // Ready when a topic can be created and its partition read.
        let t0 = Instant::now();
        loop {
            let r = blocking::ensure_topic(&own.cluster, "ready", 1);
            match r {
                Ok(_) => break,
                Err(e) if t0.elapsed() > Duration::from_secs(60) => {
                    panic!("the cluster does not become ready: {e:#}")
                }
                Err(_) => std::thread::sleep(Duration::from_millis(300)),
            }
        }
        own
    }

    /// Starts the SPU (again: same id, ports and data directory).
    pub fn start_spu(&mut self) {
        assert!(self.spu.is_none(), "the SPU is running");
        let log = self.dir.path().join("spu.log");
        let mut spu = spawn(&self.run, &self.spu_args, &log);
        wait_port("fluvio-run spu", &self.spu_public, &mut spu, &log);
        self.spu = Some(spu);
    }

    /// `kill -9` of the SPU: every connection to it is cut at once.
    pub fn kill_spu(&mut self) {
        if let Some(mut c) = self.spu.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        self.kill_spu();
        let _ = self.sc.kill();
        let _ = self.sc.wait();
    }
}
