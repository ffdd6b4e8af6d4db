//! A real sushy-tools `sushy-emulator` per test: its own config file, state dir and TMPDIR,
//! on a free loopback port; `--fake` systems, or its libvirt driver in front of QEMU domains.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `sushy-emulator`, killed on drop.
pub struct Sushy {
    child: Child,
    pub base: String,
}

impl Drop for Sushy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

impl Sushy {
    /// Starts sushy with its own config file and state dir under `dir`; None when sushy is
    /// not installed on a developer machine.
    pub fn start(dir: &Path) -> Option<Sushy> {
        Self::start_with(dir, "", "http")
    }

    /// Starts sushy with its libvirt driver (real QEMU domains) and `extra_conf` lines.
    pub fn start_libvirt(dir: &Path, extra_conf: &str) -> Option<Sushy> {
        Self::launch(dir, extra_conf, "http", false)
    }

    /// Like [`Sushy::start`], over HTTPS with a leaf certificate for 127.0.0.1 signed by a
    /// fresh CA; returns the CA's PEM path too.
    pub fn start_tls(dir: &Path) -> Option<(Sushy, std::path::PathBuf)> {
        let openssl = crate::common::tool("openssl")?;
        let run = |args: &[&str]| {
            let out = Command::new(&openssl)
                .args(args)
                .current_dir(dir)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=ironcast test CA",
        ]);
        run(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "bmc.key",
            "-out",
            "bmc.csr",
            "-subj",
            "/CN=127.0.0.1",
        ]);
        std::fs::write(
            dir.join("ext.cnf"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
        )
        .unwrap();
        run(&[
            "x509",
            "-req",
            "-in",
            "bmc.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "bmc.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ]);
        let extra = format!(
            "SUSHY_EMULATOR_SSL_CERT = '{}'\nSUSHY_EMULATOR_SSL_KEY = '{}'\n",
            dir.join("bmc.pem").display(),
            dir.join("bmc.key").display()
        );
        let s = Self::start_with(dir, &extra, "https")?;
        Some((s, dir.join("ca.pem")))
    }

    /// Like [`Sushy::start`], with Basic auth for one user (sushy has no session service).
    pub fn start_with_basic_auth(dir: &Path, user: &str, password: &str) -> Option<Sushy> {
        let hash = bcrypt::hash(password, 4).unwrap();
        let file = dir.join("htpasswd");
        std::fs::write(&file, format!("{user}:{hash}\n")).unwrap();
        Self::start_with(
            dir,
            &format!("SUSHY_EMULATOR_AUTH_FILE = '{}'\n", file.display()),
            "http",
        )
    }

    fn start_with(dir: &Path, extra_conf: &str, scheme: &str) -> Option<Sushy> {
        Self::launch(dir, extra_conf, scheme, true)
    }

    fn launch(dir: &Path, extra_conf: &str, scheme: &str, fake: bool) -> Option<Sushy> {
        let bin = crate::common::tool("sushy-emulator")?;
        let state = dir.join("state");
        let tmp = dir.join("tmp");
        std::fs::create_dir_all(&state).unwrap();
        std::fs::create_dir_all(&tmp).unwrap();
        let port = free_port();
        let conf = dir.join("sushy.conf");
        std::fs::write(
            &conf,
            format!(
                "SUSHY_EMULATOR_LISTEN_IP = '127.0.0.1'\nSUSHY_EMULATOR_LISTEN_PORT = {port}\n\
                 SUSHY_EMULATOR_STATE_DIR = '{}'\nSUSHY_EMULATOR_FAKE_DRIVER = {}\n{extra_conf}",
                state.display(),
                if fake { "True" } else { "False" }
            ),
        )
        .unwrap();
        let mut cmd = Command::new(bin);
        cmd.arg("--config").arg(&conf);
        if fake {
            cmd.arg("--fake");
        }
        let child = cmd
            .env("TMPDIR", &tmp)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("sushy.log")).unwrap())
            .spawn()
            .expect("spawn sushy-emulator");
        let s = Sushy {
            child,
            base: format!("{scheme}://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "sushy-emulator did not listen on {port}: {}",
                std::fs::read_to_string(dir.join("sushy.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(s)
    }
}
