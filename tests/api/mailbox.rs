//! Reading what the application sent, from wherever it went: the `.eml` files its own file
//! transport wrote into the test's `MAIL_OUTBOX`, or the maildir an SMTP server wrote (the
//! `aiosmtpd` CI starts, named by `TEST_SMTP_URL` + `TEST_SMTP_MAILDIR`, or `SmtpServer` below).
//! Either way a message is a real RFC 5322 file, parsed here: headers, multipart/alternative, and
//! the quoted-printable or base64 its parts may be encoded in.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use base64::Engine;

/// One message as received.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub raw: String,
    received: SystemTime,
}

impl Mail {
    /// The absolute link to `path` (such as `/password/reset`) in the plain-text part.
    pub fn link(&self, path: &str) -> String {
        self.find_link(path)
            .unwrap_or_else(|| panic!("no link to {path} in the message {:?}:\n{}", self.subject, self.text))
    }

    pub fn find_link(&self, path: &str) -> Option<String> {
        self.text
            .split(|c: char| c.is_whitespace())
            .find(|word| word.starts_with("http") && word.contains(&format!("{path}?")))
            .map(str::to_owned)
    }

    /// The path and query of `link(path)`, for a client that has its own base address.
    pub fn path_of_link(&self, path: &str) -> String {
        let link = self.link(path);
        let start = link.find(path).expect("the path is in the link");
        link[start..].to_owned()
    }

    /// The token of `link(path)`.
    pub fn token_of_link(&self, path: &str) -> String {
        let link = self.link(path);
        link.split("token=").nth(1).expect("the link has a token").to_owned()
    }
}

/// Where the test suite's SMTP server writes, when `TEST_SMTP_URL` is set.
pub fn shared_smtp() -> Option<(String, PathBuf)> {
    let url = std::env::var("TEST_SMTP_URL").ok().filter(|url| !url.is_empty())?;
    let maildir = std::env::var("TEST_SMTP_MAILDIR")
        .ok()
        .filter(|dir| !dir.is_empty())
        .expect("TEST_SMTP_MAILDIR names where the SMTP server of TEST_SMTP_URL writes messages");
    Some((url, PathBuf::from(maildir)))
}

fn files_under(directory: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(directory) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            // A maildir's `tmp` holds messages still being written.
            if path.file_name().is_some_and(|name| name != "tmp") {
                files_under(&path, found);
            }
        } else {
            // `.eml` files of the file transport; a maildir's message files have names of their own.
            found.push(path);
        }
    }
}

/// Every message in `directory` addressed to `address`, oldest first.
pub fn messages_to(directory: &Path, address: &str) -> Vec<Mail> {
    let mut files = Vec::new();
    files_under(directory, &mut files);
    let address = address.to_ascii_lowercase();
    let mut mails: Vec<Mail> = files
        .iter()
        .filter_map(|path| {
            let raw = std::fs::read(path).ok()?;
            let received = std::fs::metadata(path).and_then(|meta| meta.modified()).ok()?;
            parse(&String::from_utf8_lossy(&raw), received)
        })
        .filter(|mail| mail.to.to_ascii_lowercase().contains(&address))
        .collect();
    mails.sort_by_key(|mail| mail.received);
    mails
}

/// Waits (up to 15 s) until `directory` holds at least `count` messages to `address`.
pub async fn wait_for(directory: &Path, address: &str, count: usize) -> Vec<Mail> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let mails = messages_to(directory, address);
        if mails.len() >= count {
            return mails;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} message(s) to {address} in {} after 15 s, expected {count}",
            mails.len(),
            directory.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn split_head(message: &str) -> (&str, &str) {
    match message.find("\n\n") {
        Some(at) => (&message[..at], &message[at + 2..]),
        None => (message, ""),
    }
}

/// Header name (lower case) and unfolded value, in order.
fn headers(head: &str) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = headers.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    headers
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers
        .iter()
        .find(|(found, _)| found == name)
        .map_or("", |(_, value)| value.as_str())
}

/// RFC 2047 encoded words in base64 (`=?utf-8?b?…?=`), as lettre writes non-ASCII subjects.
fn decode_words(value: &str) -> String {
    let mut out = String::new();
    for word in value.split(' ') {
        let lower = word.to_ascii_lowercase();
        if lower.starts_with("=?utf-8?b?") && word.ends_with("?=") {
            let encoded = &word[10..word.len() - 2];
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .unwrap_or_default();
            out.push_str(&String::from_utf8_lossy(&bytes));
        } else {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(word);
        }
    }
    out
}

fn decode_quoted_printable(body: &str) -> String {
    let bytes = body.replace("=\n", "").into_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'='
            && index + 2 < bytes.len() + 1
            && let Some(hex) = bytes.get(index + 1..index + 3)
            && let Ok(byte) = u8::from_str_radix(&String::from_utf8_lossy(hex), 16)
        {
            out.push(byte);
            index += 3;
            continue;
        }
        out.push(bytes[index]);
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn decode_body(headers: &[(String, String)], body: &str) -> String {
    match header(headers, "content-transfer-encoding")
        .to_ascii_lowercase()
        .as_str()
    {
        "quoted-printable" => decode_quoted_printable(body),
        "base64" => {
            let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(compact)
                .unwrap_or_default();
            String::from_utf8_lossy(&bytes).into_owned()
        }
        _ => body.to_owned(),
    }
}

fn boundary(content_type: &str) -> Option<String> {
    content_type.split(';').map(str::trim).find_map(|part| {
        part.strip_prefix("boundary=")
            .map(|value| value.trim_matches('"').to_owned())
    })
}

/// The text and HTML parts of a (possibly nested) multipart body.
fn collect_parts(headers: &[(String, String)], body: &str, text: &mut String, html: &mut String) {
    let content_type = header(headers, "content-type").to_ascii_lowercase();
    if content_type.starts_with("multipart/") {
        let Some(boundary) = boundary(header(headers, "content-type")) else {
            return;
        };
        let delimiter = format!("--{boundary}");
        for part in body.split(&delimiter).skip(1) {
            if part.starts_with("--") {
                break;
            }
            let part = part.strip_prefix('\n').unwrap_or(part);
            let (head, part_body) = split_head(part);
            collect_parts(&self::headers(head), part_body, text, html);
        }
    } else if content_type.starts_with("text/html") {
        *html = decode_body(headers, body);
    } else {
        *text = decode_body(headers, body);
    }
}

fn parse(raw: &str, received: SystemTime) -> Option<Mail> {
    let normalized = raw.replace("\r\n", "\n");
    let (head, body) = split_head(&normalized);
    let headers = headers(head);
    let to = header(&headers, "to").to_owned();
    if to.is_empty() {
        return None;
    }
    let mut text = String::new();
    let mut html = String::new();
    collect_parts(&headers, body, &mut text, &mut html);
    Some(Mail {
        to,
        subject: decode_words(header(&headers, "subject")),
        text,
        html,
        raw: normalized,
        received,
    })
}

/// A small SMTP server of a test's own (RFC 5321's commands, no TLS and no AUTH offered, so
/// the application's STARTTLS-when-offered transport speaks plain SMTP to it), writing each
/// message it accepts into `directory`, as the CI's `aiosmtpd` does. Stopped when dropped.
pub struct SmtpServer {
    task: tokio::task::JoinHandle<()>,
}

impl SmtpServer {
    /// Listens on `port` (0: any free port).
    pub async fn start(port: u16, directory: &Path) -> Self {
        std::fs::create_dir_all(directory).expect("the mail directory can be created");
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("the SMTP port is free");
        let target = directory.to_path_buf();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let target = target.clone();
                tokio::spawn(async move {
                    let _ = serve(stream, &target).await;
                });
            }
        });
        Self { task }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(stream: tokio::net::TcpStream, directory: &Path) -> std::io::Result<()> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let (reader, mut writer) = stream.into_split();
    let mut lines = BufReader::new(reader);
    writer.write_all(b"220 localhost test SMTP\r\n").await?;
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_ascii_uppercase();
        if command.starts_with("EHLO") {
            writer.write_all(b"250-localhost\r\n250 8BITMIME\r\n").await?;
        } else if command.starts_with("HELO") || command.starts_with("MAIL") || command.starts_with("RCPT") {
            writer.write_all(b"250 OK\r\n").await?;
        } else if command == "DATA" {
            writer.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
            let mut message = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                message.push_str(
                    line.strip_prefix('.')
                        .filter(|_| line.starts_with(".."))
                        .unwrap_or(&line),
                );
            }
            let name = format!("{}.eml", revocable::domain::RandomId::generate());
            std::fs::write(directory.join(name), message)?;
            writer.write_all(b"250 OK queued\r\n").await?;
        } else if command == "QUIT" {
            writer.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else if command == "RSET" || command == "NOOP" {
            writer.write_all(b"250 OK\r\n").await?;
        } else {
            writer.write_all(b"502 not implemented\r\n").await?;
        }
    }
}
