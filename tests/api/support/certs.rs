//! Certificates for the TLS tests, made with Debian's `openssl`: a CA, and certificates it signs
//! for localhost and 127.0.0.1 (a server's, a client's).

use std::path::Path;
use std::process::Command;

use super::run;

fn openssl(args: &[&str], dir: &Path) {
    run(Command::new("openssl").args(args).current_dir(dir));
}

/// A CA: `<name>.pem`, and its key `<name>.key`.
pub fn ca(dir: &Path, name: &str) {
    let subject = format!("/CN=vmtelemetry test CA {name}");
    let (key, pem) = (format!("{name}.key"), format!("{name}.pem"));
    openssl(
        &[
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", &subject,
            "-keyout", &key, "-out", &pem,
        ],
        dir,
    );
}

/// A certificate `<name>.pem` and its key `<name>.key`, signed by the CA `ca`, for localhost and
/// 127.0.0.1.
pub fn signed(dir: &Path, ca: &str, name: &str) {
    let (key, csr, pem) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.pem"),
    );
    let subject = format!("/CN={name}");
    openssl(
        &[
            "req", "-newkey", "rsa:2048", "-nodes", "-subj", &subject, "-keyout", &key, "-out",
            &csr,
        ],
        dir,
    );
    let extensions = format!("{name}.ext");
    std::fs::write(
        dir.join(&extensions),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    let (ca_pem, ca_key) = (format!("{ca}.pem"), format!("{ca}.key"));
    openssl(
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_pem,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            &extensions,
            "-out",
            &pem,
        ],
        dir,
    );
}

/// A CA (`ca.pem`), and a server certificate it signed (`server.pem`, `server.key`).
pub fn certificates(dir: &Path) {
    ca(dir, "ca");
    signed(dir, "ca", "server");
}
