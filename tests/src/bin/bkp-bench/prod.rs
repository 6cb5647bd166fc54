//! Scenario h: the production path. The harness makes its own RSA key pair, starts the release
//! fixture in prod mode with the public key, and drives the empty invoke with gateway JWTs
//! (a) from a small set reused on every request (as the gateway's connections do) and (b) from a
//! pool larger than the server's token cache, so that every request needs a full RSA
//! verification — side by side with dev mode (no JWT) in the same run.

use std::path::Path;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA512};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bkp_blackbox_tests::{Backend, Launch, Plugin, TempDir, TestDb, migrate};
use serde_json::json;

use super::wrk::wrk_rotating;
use super::*;

/// The gateway name the tokens' `kid` carries.
const GATEWAY: &str = "bkp-bench";
/// Tokens in the reused set: one per wrk connection.
const REUSED: usize = 50;
/// Tokens in the fresh pool: each wrk thread cycles through its own half, 12,000 tokens, more
/// than the server's 10,000-token cache, so a token is always evicted before it comes again.
const FRESH: usize = 24_000;

/// Runs scenario h on SQLite (the sync invoke never touches the database).
pub(crate) async fn prod_scenarios(options: &Options, table: &mut Table) {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    println!("== production path (gateway JWT), SQLite");
    let dir = TempDir::new("bkp-bench-jwt");
    let (key, public_pem) = key_pair();
    let public_path = dir.0.join("gateway.pub");
    std::fs::write(&public_path, public_pem).unwrap_or_else(|e| panic!("{e}"));
    let started = std::time::Instant::now();
    let reused = write_tokens(&key, REUSED, &dir.0.join("reused.txt"));
    let fresh = write_tokens(&key, FRESH, &dir.0.join("fresh.txt"));
    println!(
        "  signed {} tokens in {:.1} s",
        REUSED + FRESH,
        started.elapsed().as_secs_f64()
    );
    let no_jwt = dir.0.join("none.txt");
    std::fs::write(&no_jwt, "-\n").unwrap_or_else(|e| panic!("{e}"));
    let body = SYNC[0].2;

    migrate(&db);
    let dev = Plugin::start(&db).await;
    let url = format!("{}/bk_plugin/invoke/1.6.0", dev.base);
    let dev_result = wrk_rotating(&url, body, &no_jwt, options.duration);
    dev_result.record(table, "h. dev mode, no JWT", false);
    drop(dev);

    let public = public_path.to_string_lossy().to_string();
    let launch = Launch::serve()
        .env("BKPAAS_ENVIRONMENT", "prod")
        .env(
            "BKPAAS_APP_SECRET",
            "a-long-random-app-secret-for-the-bench",
        )
        .env("BKPAAS_BK_PLUGIN_APIGW_NAME", GATEWAY)
        .env("APIGW_PUBLIC_KEY_FILE", &public);
    let prod = Plugin::launch(&db, launch).await;
    let url = format!("{}/bk_plugin/invoke/1.6.0", prod.base);
    let runs: [(&str, &Path); 2] = [
        ("h. prod mode, 50 reused JWTs", &reused),
        ("h. prod mode, a fresh JWT per request", &fresh),
    ];
    for (name, tokens) in runs {
        let result = wrk_rotating(&url, body, tokens, options.duration);
        result.record(table, name, false);
        table.put(
            &format!("{name}, % of dev"),
            false,
            format!("{:.0} %", 100.0 * result.rps() / dev_result.rps()),
        );
    }
    drop(prod);
    db.drop_database().await;
}

/// A fresh RSA-2048 key pair and its public key as PEM (SubjectPublicKeyInfo).
fn key_pair() -> (KeyPair, String) {
    let key = KeyPair::generate(KeySize::Rsa2048).unwrap_or_else(|e| panic!("keygen: {e}"));
    let der = key
        .public_key()
        .as_der()
        .unwrap_or_else(|e| panic!("public key: {e}"));
    let body = STANDARD.encode(der.as_ref());
    let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END PUBLIC KEY-----\n");
    (key, pem)
}

/// Signs `count` distinct RS512 gateway JWTs (valid for an hour) on both cores and writes them
/// one per line to `path`.
fn write_tokens(key: &KeyPair, count: usize, path: &Path) -> std::path::PathBuf {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let header =
        URL_SAFE_NO_PAD.encode(json!({"alg": "RS512", "typ": "JWT", "kid": GATEWAY}).to_string());
    let sign = |i: usize| {
        let claims = json!({
            "app": {"app_code": "bk_sops", "verified": true},
            "user": {"username": "admin", "verified": true},
            "iss": "APIGW", "exp": now + 3600, "nbf": now - 10, "jti": i,
        });
        let message = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims.to_string()));
        let mut signature = vec![0; key.public_modulus_len()];
        key.sign(
            &RSA_PKCS1_SHA512,
            &SystemRandom::new(),
            message.as_bytes(),
            &mut signature,
        )
        .unwrap_or_else(|e| panic!("sign: {e}"));
        format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature))
    };
    let halves: Vec<String> = std::thread::scope(|scope| {
        let sign = &sign;
        let workers: Vec<_> = (0..2)
            .map(|half| {
                scope.spawn(move || {
                    (half..count)
                        .step_by(2)
                        .map(|i| sign(i) + "\n")
                        .collect::<String>()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_default())
            .collect()
    });
    std::fs::write(path, halves.concat()).unwrap_or_else(|e| panic!("{e}"));
    path.to_path_buf()
}
