//! The binary itself: configuration errors, commands, logs, shutdown.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use revocable::domain::RandomId;

fn fresh_directory() -> std::path::PathBuf {
    let directory = std::env::temp_dir().join(format!("revocable-cli-{}", RandomId::generate()));
    std::fs::create_dir_all(&directory).unwrap();
    directory
}

/// The binary in an empty working directory with an empty environment.
fn binary() -> Command {
    binary_in(&fresh_directory())
}

fn binary_in(directory: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_revocable"));
    command
        .current_dir(directory)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    command
}

#[test]
fn an_invalid_setting_stops_start_up_with_one_line_and_status_2() {
    for (variable, value, expected) in [
        ("JWT_SECRET", "too-short", "JWT_SECRET must be at least 32 bytes"),
        ("ACCESS_TTL", "soon", "ACCESS_TTL must be a duration"),
        ("JWT_ALG", "none", "JWT_ALG must be HS256 or EdDSA"),
        ("BIND", "everywhere", "BIND must be an address"),
    ] {
        let output = binary().env(variable, value).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{variable}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
        assert!(!stderr.contains("panicked"));
    }
}

#[test]
fn help_lists_serve_migrate_and_demo() {
    let output = binary().arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for command in ["serve", "migrate", "demo"] {
        assert!(help.contains(command), "{help}");
    }
}

#[test]
fn migrate_creates_the_sqlite_file_and_applies_the_schema() {
    let mut command = binary();
    let output = command.arg("migrate").output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains("migrations applied"));
    let directory = command.get_current_dir().unwrap();
    assert!(directory.join("revocable.db").exists());
}

/// Starts `revocable serve` on a free port and returns the child and its address.
fn serve(extra: &[(&str, &str)]) -> (std::process::Child, String, std::sync::mpsc::Receiver<String>) {
    serve_in(&fresh_directory(), extra)
}

fn serve_in(
    directory: &std::path::Path,
    extra: &[(&str, &str)],
) -> (std::process::Child, String, std::sync::mpsc::Receiver<String>) {
    let mut command = binary_in(directory);
    command
        .env("BIND", "127.0.0.1:0")
        .env("RUST_LOG", "debug")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in extra {
        command.env(key, value);
    }
    let mut child = command.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (sender, receiver) = std::sync::mpsc::channel();
    for stream in [Box::new(stdout) as Box<dyn std::io::Read + Send>, Box::new(stderr)] {
        let sender = sender.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        if let Ok(line) = receiver.recv_timeout(Duration::from_millis(200)) {
            let plain = strip_ansi(&line);
            if let Some(address) = plain.split("address=").nth(1) {
                let address = address.split_whitespace().next().unwrap().to_owned();
                return (child, format!("http://{address}"), receiver);
            }
            // LOG_FORMAT=json: `"address":"127.0.0.1:…"`.
            if let Some(address) = plain.split("\"address\":\"").nth(1) {
                let address = address.split('"').next().unwrap().to_owned();
                return (child, format!("http://{address}"), receiver);
            }
            seen.push(plain);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the server did not report its address: {seen:?}");
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for next in chars.by_ref() {
                if next.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Registers ann@example.com and returns the token response of her first log-in.
async fn register_and_log_in(client: &reqwest::Client, address: &str, password: &str) -> serde_json::Value {
    let credentials = serde_json::json!({ "email": "ann@example.com", "password": password });
    let registered = client
        .post(format!("{address}/api/register"))
        .json(&credentials)
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);
    let response = client
        .post(format!("{address}/api/token"))
        .json(&credentials)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn terminate(child: &std::process::Child) {
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn secrets_and_passwords_never_reach_the_log() {
    let secret = "s3cr3t-signing-key-that-is-long-enough-0123456789";
    let (mut child, address, lines) = serve(&[("JWT_SECRET", secret)]);
    let client = reqwest::Client::new();
    let password = "hunter2-but-longer";
    let token = register_and_log_in(&client, &address, password).await;
    let access = token["access_token"].as_str().unwrap().to_owned();
    let refresh = token["refresh_token"].as_str().unwrap().to_owned();
    client
        .get(format!("{address}/api/version/me"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    client
        .post(format!("{address}/api/token"))
        .json(&serde_json::json!({ "email": "ann@example.com", "password": "wrong-password-123" }))
        .send()
        .await
        .unwrap();
    terminate(&child);
    let status = child.wait().unwrap();
    assert!(status.success(), "SIGTERM ends the server cleanly: {status:?}");
    let log: Vec<String> = lines.try_iter().collect();
    let log = log.join("\n");
    let request_lines: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("path=\"/api/version/me\""))
        .collect();
    assert_eq!(request_lines.len(), 1, "one line per request: {log}");
    assert!(request_lines[0].contains("status=200"), "{}", request_lines[0]);
    assert!(
        request_lines[0].contains("latency_ms="),
        "with its latency: {}",
        request_lines[0]
    );
    for forbidden in [secret, password, "wrong-password-123", &access, &refresh] {
        assert!(!log.contains(forbidden), "the log contains a secret: {forbidden}");
    }
}

#[tokio::test]
async fn sigterm_lets_the_server_finish_and_exit_zero() {
    let (mut child, address, _lines) = serve(&[]);
    assert_eq!(reqwest::get(format!("{address}/healthz")).await.unwrap().status(), 200);
    terminate(&child);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{status:?}");
            break;
        }
        assert!(Instant::now() < deadline, "the server did not stop after SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test]
async fn the_embedded_default_keeps_its_generated_keys_across_a_restart() {
    let directory = fresh_directory();
    // Each run binds another free port; a deployment keeps its public URL, and so its issuer.
    let public_url = [("PUBLIC_URL", "http://revocable.test")];
    let (mut child, address, _lines) = serve_in(&directory, &public_url);
    let client = reqwest::Client::new();
    let token = register_and_log_in(&client, &address, "correct horse").await;
    let access = token["access_token"].as_str().unwrap().to_owned();
    terminate(&child);
    child.wait().unwrap();
    assert!(
        directory.join("revocable.db").exists(),
        "the SQLite file is created in the working directory"
    );

    let (mut restarted, address, _lines) = serve_in(&directory, &public_url);
    let me = client
        .get(format!("{address}/api/version/me"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200, "a token issued before the restart still verifies");
    terminate(&restarted);
    restarted.wait().unwrap();
}

#[tokio::test]
async fn compare_shows_the_benchmark_compiled_into_the_binary_wherever_the_server_runs() {
    // `serve` runs in a fresh directory with no docs/ in it.
    let (child, address, _lines) = serve(&[]);
    let page = reqwest::get(format!("{address}/compare"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    terminate(&child);
    assert!(
        page.contains("Requests per second — <strong>higher is better</strong>"),
        "{page}"
    );
    assert!(!page.contains("carries no benchmark"));
    let compiled = include_str!("../../docs/benchmarks.md");
    let first_row = compiled
        .lines()
        .find(|line| line.starts_with('|') && !line.contains("---"))
        .expect("the compiled benchmark has a table");
    let first_header = first_row
        .trim_matches('|')
        .split('|')
        .next()
        .unwrap()
        .trim()
        .replace('`', "");
    assert!(
        page.contains(&format!("<th scope=\"col\">{first_header}</th>")),
        "{first_header}"
    );
}

/// Every secret a client might send, in every place it might send it, at the default log level
/// and at `debug`, in text and in JSON lines.
#[tokio::test]
async fn secrets_in_query_strings_headers_and_bodies_never_reach_the_log() {
    for (level, format) in [("info", "text"), ("debug", "text"), ("debug", "json")] {
        let (mut child, address, lines) = serve(&[("RUST_LOG", level), ("LOG_FORMAT", format)]);
        let client = reqwest::Client::new();
        let password = "pass-in-body-7f3a9c";
        let token = register_and_log_in(&client, &address, password).await;
        let access = token["access_token"].as_str().unwrap().to_owned();
        let refresh = token["refresh_token"].as_str().unwrap().to_owned();
        let session_id = token["session_id"].as_str().unwrap().to_owned();
        let query_secret = "query-secret-41d8e2";
        let cookie_secret = "cookie-secret-5b6f01";
        let header_secret = "custom-header-secret-9e77aa";
        let agent_secret = "agent-secret-c0ffee";
        let sent = [
            client
                .get(format!(
                    "{address}/api/version/me?access_token={access}&password={query_secret}"
                ))
                .bearer_auth(&access),
            client
                .get(format!("{address}/api/stateless/me?refresh_token={refresh}"))
                .header("authorization", format!("Bearer {access}"))
                .header("cookie", format!("revocable_session={cookie_secret}"))
                .header("x-api-key", header_secret)
                .header("user-agent", agent_secret),
            client
                .get(format!("{address}/dashboard?token={query_secret}"))
                .header("cookie", format!("revocable_session={cookie_secret}")),
            client
                .delete(format!("{address}/api/sessions/{session_id}?secret={query_secret}"))
                .bearer_auth("not.a-valid.token-bearer-secret-3141"),
            client
                .post(format!("{address}/api/token/refresh"))
                .json(&serde_json::json!({ "refresh_token": refresh })),
            client
                .post(format!("{address}/api/token?password={query_secret}"))
                .json(&serde_json::json!({ "email": "ann@example.com", "password": password })),
        ];
        for request in sent {
            request.send().await.unwrap();
        }
        terminate(&child);
        assert!(child.wait().unwrap().success());
        let log = lines.try_iter().collect::<Vec<_>>().join("\n");
        for forbidden in [
            password,
            &access,
            &refresh,
            query_secret,
            cookie_secret,
            header_secret,
            agent_secret,
            "bearer-secret-3141",
            "access_token=",
        ] {
            assert!(
                !log.contains(forbidden),
                "RUST_LOG={level} LOG_FORMAT={format}: the log contains {forbidden:?}:\n{log}"
            );
        }
        if level == "debug" {
            let revoke = log
                .lines()
                .find(|line| line.contains("/api/sessions/{id}"))
                .unwrap_or_else(|| panic!("the route pattern is logged: {log}"));
            assert!(revoke.contains(&format!("/api/sessions/{session_id}")), "{revoke}");
            assert!(revoke.contains("401"), "{revoke}");
        }
        if format == "json" {
            for line in log.lines().filter(|line| !line.trim().is_empty()) {
                serde_json::from_str::<serde_json::Value>(line)
                    .unwrap_or_else(|error| panic!("not a JSON line ({error}): {line}"));
            }
        }
    }
}

#[test]
fn an_unknown_log_format_stops_start_up_with_status_2() {
    let output = binary().env("LOG_FORMAT", "xml").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("LOG_FORMAT must be text or json"));
}
