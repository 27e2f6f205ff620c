//! Certificates, tokens, kubeconfig files and the audit policy of a harness, made with the
//! `openssl` CLI exactly as `shared/k8s/kube-test-env` does (EC P-256 CA, a serving cert for
//! 127.0.0.1/localhost, service-account signing keys, a static admin token).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const OPENSSL_CNF: &str = "\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign,digitalSignature
subjectKeyIdentifier = hash
[v3_server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = IP:127.0.0.1,DNS:localhost,IP:10.96.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc
";

/// Metadata for every request, one JSON line each, once the response is complete.
pub(crate) const AUDIT_POLICY: &str = "\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
";

/// Files of the PKI directory.
pub(crate) struct Pki {
    pub dir: PathBuf,
    pub admin_token: String,
}

impl Pki {
    pub(crate) fn ca_crt(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }
    pub(crate) fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("kube-env needs the openssl CLI (Debian package openssl): {e}"));
    assert!(
        out.status.success(),
        "openssl {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Creates `dir` with ca.{key,crt}, apiserver.{key,crt}, sa.{key,pub}, tokens.csv.
pub(crate) fn generate(dir: &Path) -> Pki {
    std::fs::create_dir_all(dir).expect("create pki dir");
    let p = |name: &str| dir.join(name).to_string_lossy().into_owned();
    std::fs::write(p("openssl.cnf"), OPENSSL_CNF).expect("write openssl.cnf");
    for key in ["ca", "apiserver", "sa"] {
        openssl(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            &p(&format!("{key}.key")),
        ]);
    }
    openssl(&["pkey", "-in", &p("sa.key"), "-pubout", "-out", &p("sa.pub")]);
    openssl(&[
        "req",
        "-x509",
        "-new",
        "-config",
        &p("openssl.cnf"),
        "-extensions",
        "v3_ca",
        "-key",
        &p("ca.key"),
        "-subj",
        "/CN=ferrolb-test-ca",
        "-days",
        "3650",
        "-sha256",
        "-out",
        &p("ca.crt"),
    ]);
    openssl(&[
        "req",
        "-new",
        "-config",
        &p("openssl.cnf"),
        "-key",
        &p("apiserver.key"),
        "-subj",
        "/CN=kube-apiserver",
        "-out",
        &p("apiserver.csr"),
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        &p("apiserver.csr"),
        "-CA",
        &p("ca.crt"),
        "-CAkey",
        &p("ca.key"),
        "-CAcreateserial",
        "-days",
        "3650",
        "-sha256",
        "-extfile",
        &p("openssl.cnf"),
        "-extensions",
        "v3_server",
        "-out",
        &p("apiserver.crt"),
    ]);
    let admin_token = random_hex(32);
    std::fs::write(
        p("tokens.csv"),
        format!("{admin_token},ferrolb-admin-token,ferrolb-admin-token,\"system:masters\"\n"),
    )
    .expect("write tokens.csv");
    Pki {
        dir: dir.to_path_buf(),
        admin_token,
    }
}

/// `n` random bytes as hex, from /dev/urandom.
fn random_hex(n: usize) -> String {
    use std::io::Read;
    let mut buf = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("read /dev/urandom");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes a kubeconfig (mode 0600) that talks to `server` with `token`, trusting `ca`.
pub(crate) fn write_kubeconfig(path: &Path, server: &str, ca: &Path, user: &str, token: &str) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let text = format!(
        "apiVersion: v1
kind: Config
clusters:
- name: ferrolb-test
  cluster:
    server: {server}
    certificate-authority: {ca}
users:
- name: {user}
  user:
    token: {token}
contexts:
- name: ferrolb-test
  context:
    cluster: ferrolb-test
    user: {user}
current-context: ferrolb-test
",
        ca = ca.display()
    );
    let tmp = path.with_extension("tmp");
    std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .expect("write kubeconfig");
    std::fs::rename(&tmp, path).expect("rename kubeconfig");
}
