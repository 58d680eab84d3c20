//! `memtail tail https://...`: through a TLS server (rustls, a certificate made for the test) in
//! front of `memtail serve`. The certificate is trusted with `--cacert`; without it the first
//! connection fails with exit code 1 and says why.
//!
//! Runs the `memtail` binary that `cargo test --all-features` builds beside the test binaries;
//! when it is not built, the test is reported as ignored, unless `MEMTAIL_REQUIRE_EXAMPLES` is
//! set (as in CI).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;

use memtail_suite::process::Process;
use memtail_suite::{system_test, Missing};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

fn main() {
    memtail_suite::run(vec![system_test(
        "memtail_tail_follows_a_server_over_https",
        built_memtail,
        memtail_tail_follows_a_server_over_https,
    )]);
}

/// `target/debug/memtail`, as `cargo test` builds it.
fn built_memtail() -> Result<PathBuf, Missing> {
    std::env::current_exe()
        .ok()
        .and_then(|test| Some(test.parent()?.parent()?.join("memtail")))
        .filter(|path| path.is_file())
        .ok_or_else(|| Missing {
            reason: "the memtail binary is not built (run the whole `cargo test --all-features`)"
                .into(),
            require: "MEMTAIL_REQUIRE_EXAMPLES",
        })
}

/// Accepts TLS on a loopback port and relays each connection to `backend`; returns the port.
fn tls_proxy(backend: String, cert: CertificateDer<'static>, key: PrivateKeyDer<'static>) -> u16 {
    let config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            port_tx.send(listener.local_addr().unwrap().port()).unwrap();
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let (acceptor, backend) = (acceptor.clone(), backend.clone());
                tokio::spawn(async move {
                    // A client that refuses the certificate ends its handshake: nothing to relay.
                    let Ok(mut tls) = acceptor.accept(client).await else {
                        return;
                    };
                    let mut server = TcpStream::connect(backend).await.unwrap();
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut server).await;
                });
            }
        });
    });
    port_rx.recv().unwrap()
}

fn memtail_tail_follows_a_server_over_https(memtail: PathBuf) {
    let dir = std::env::temp_dir().join(format!("memtail-https-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("app.log");
    std::fs::write(&log, "over tls\n").unwrap();

    let mut server = Process::spawn(
        Command::new(&memtail)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::piped()),
    );
    let mut first = String::new();
    BufReader::new(server.stdout().unwrap())
        .read_line(&mut first)
        .unwrap();
    let backend = first
        .trim()
        .strip_prefix("memtail: serving http://")
        .and_then(|rest| rest.strip_suffix('/'))
        .unwrap_or_else(|| panic!("{first:?}"))
        .to_owned();

    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_pem = dir.join("cert.pem");
    std::fs::write(&cert_pem, made.cert.pem()).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.key_pair.serialize_der()));
    let port = tls_proxy(backend, made.cert.der().clone(), key);
    let url = format!("https://localhost:{port}/");

    // Trusted: the log arrives.
    let mut tail = Process::spawn(
        Command::new(&memtail)
            .args(["tail", &url, "--cacert"])
            .arg(&cert_pem)
            .stdout(Stdio::piped()),
    );
    let mut line = String::new();
    BufReader::new(tail.stdout().unwrap())
        .read_line(&mut line)
        .unwrap();
    // The line, after the time `memtail serve` gave it when it read it.
    assert!(line.ends_with("Z over tls\n"), "{line:?}");
    assert_eq!(
        line.len(),
        "2026-12-04T19:00:03.653434Z over tls\n".len(),
        "{line:?}"
    );
    drop(tail);

    // Not trusted: the first connection fails, exit code 1, and the message says so.
    let mut refused = Process::spawn(
        Command::new(&memtail)
            .args(["tail", &url])
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    );
    let mut stderr = String::new();
    BufReader::new(refused.stderr().unwrap())
        .read_line(&mut stderr)
        .unwrap();
    let status = refused.wait(std::time::Duration::from_secs(30));
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.to_lowercase().contains("certificate"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
