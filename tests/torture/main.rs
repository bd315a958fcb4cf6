//! Integrity of the RFC 4475 torture corpus (`cargo test --test torture`).
//!
//! These tests do not exercise the SIP parser. They guard the fixtures the parser
//! tests depend on: a checkout that normalised line endings, an editor that
//! stripped trailing spaces or a retyped message would silently turn several
//! torture tests into ordinary ones. Parser/UAS assertions iterate over
//! [`manifest::load`] in the same way.

mod gateway;
mod manifest;

use manifest::{Entry, Expect, Kind};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::error::Error;

type TestResult = Result<(), Box<dyn Error>>;

fn entry<'a>(entries: &'a [Entry], name: &str) -> Result<&'a Entry, Box<dyn Error>> {
    entries
        .iter()
        .find(|e| e.name == name)
        .ok_or_else(|| format!("{name} is not in manifest.toml").into())
}

/// The header section: everything before the first empty line (or the whole
/// message when, as in the archived `baddn`, there is none).
fn head(msg: &[u8]) -> &[u8] {
    match msg.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => &msg[..i + 2],
        None => msg,
    }
}

fn body(msg: &[u8]) -> Option<&[u8]> {
    msg.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| &msg[i + 4..])
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn first_line(msg: &[u8]) -> &[u8] {
    match msg.windows(2).position(|w| w == b"\r\n") {
        Some(i) => &msg[..i + 2],
        None => msg,
    }
}

#[test]
fn manifest_lists_exactly_the_corpus_files() -> TestResult {
    let entries = manifest::load()?;
    let listed: BTreeSet<String> = entries.iter().map(|e| e.name.clone()).collect();
    assert_eq!(
        listed.len(),
        entries.len(),
        "duplicate name in manifest.toml"
    );

    let mut on_disk = BTreeSet::new();
    for dirent in std::fs::read_dir(manifest::dir())? {
        let name = dirent?.file_name().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".dat") {
            on_disk.insert(stem.to_owned());
        }
    }
    assert_eq!(listed, on_disk, "manifest.toml and the .dat files disagree");

    // RFC 4475 §3 describes 13 valid and 19 invalid parser messages, 1 transaction
    // layer, 15 application layer and 1 backward compatibility message.
    let count = |prefix: &str| {
        entries
            .iter()
            .filter(|e| e.section.starts_with(prefix))
            .count()
    };
    assert_eq!(count("3.1.1."), 13);
    assert_eq!(count("3.1.2."), 19);
    assert_eq!(count("3.2."), 1);
    assert_eq!(count("3.3."), 15);
    assert_eq!(count("3.4."), 1);
    assert_eq!(entries.len(), 49);
    Ok(())
}

#[test]
fn manifest_entries_are_consistent() -> TestResult {
    for e in manifest::load()? {
        let msg = e.bytes()?;
        let is_response = msg.starts_with(b"SIP/");
        assert_eq!(
            is_response,
            e.kind == Kind::Response,
            "{}: kind does not match the start line",
            e.name
        );
        match e.expect {
            Expect::Invalid400 => assert_eq!(e.answer, Some(400), "{}", e.name),
            Expect::ValidSemantic => assert!(
                e.answer.is_some_and(|a| a != 400),
                "{}: valid-semantic needs a non-400 answer",
                e.name
            ),
            Expect::InvalidDrop => {
                assert_eq!(
                    e.kind,
                    Kind::Response,
                    "{}: only responses are dropped",
                    e.name
                );
                assert_eq!(
                    e.answer, None,
                    "{}: a dropped message has no answer",
                    e.name
                );
            }
            // "valid" means processed normally, which needs a parsed message.
            Expect::Valid => assert!(e.must_parse, "{}: valid but may fail to parse", e.name),
        }
        // RFC 4475 §3.1.1: every message there is one "a parser must accept".
        if e.section.starts_with("3.1.1.") {
            assert!(e.must_parse, "{}: §3.1.1 messages must parse", e.name);
        }
        if e.kind == Kind::Response {
            assert_eq!(e.answer, None, "{}: responses are never answered", e.name);
        }
        for code in e.answer.iter().chain(&e.alternatives) {
            assert!((100..700).contains(code), "{}: bad status {code}", e.name);
        }
        assert!(!e.note.is_empty(), "{}: empty note", e.name);
    }
    Ok(())
}

/// SHA256SUMS was produced from the RFC's Appendix A archive (see extract.sh);
/// any byte change, most likely CRLF -> LF, breaks it.
#[test]
fn files_match_the_rfc_archive_checksums() -> TestResult {
    let sums = std::fs::read_to_string(manifest::dir().join("SHA256SUMS"))?;
    let mut checked = 0;
    for line in sums.lines() {
        let (want, name) = line
            .split_once("  ")
            .ok_or_else(|| format!("malformed SHA256SUMS line {line:?}"))?;
        let got: String = Sha256::digest(std::fs::read(manifest::dir().join(name))?)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(got, want, "{name} differs from the RFC 4475 archive");
        checked += 1;
    }
    assert_eq!(checked, 49);
    Ok(())
}

#[test]
fn every_header_line_ends_with_crlf() -> TestResult {
    for e in manifest::load()? {
        let msg = e.bytes()?;
        let head = head(&msg);
        assert!(
            head.ends_with(b"\r\n"),
            "{}: header not CRLF-terminated",
            e.name
        );
        for (i, &b) in head.iter().enumerate() {
            if b == b'\n' {
                assert!(
                    i > 0 && head[i - 1] == b'\r',
                    "{}: bare LF in header",
                    e.name
                );
            }
            if b == b'\r' {
                assert_eq!(
                    head.get(i + 1),
                    Some(&b'\n'),
                    "{}: bare CR in header",
                    e.name
                );
            }
        }
    }
    Ok(())
}

/// The octets the RFC singles out must be present exactly as the RFC describes.
#[test]
fn special_octets_survive() -> TestResult {
    let entries = manifest::load()?;

    // §3.1.1.2: quoted-pairs escaping BEL, NUL and DEL inside the To display name.
    let intmeth = entry(&entries, "intmeth")?.bytes()?;
    assert!(contains(
        &intmeth,
        b"To: \"BEL:\\\x07 NUL:\\\x00 DEL:\\\x7F\""
    ));

    // §3.1.1.4: %00 is an escape in the text, never a raw NUL octet.
    let escnull = entry(&entries, "escnull")?.bytes()?;
    assert!(!escnull.contains(&0));
    assert_eq!(escnull.windows(3).filter(|w| w == b"%00").count(), 5);

    // §3.1.1.8: after the REGISTER's empty body come an empty line and a second,
    // complete INVITE: spurious octets that must be ignored.
    let dblreq = entry(&entries, "dblreq")?.bytes()?;
    let rest = body(&dblreq).ok_or("dblreq has no body separator")?;
    assert!(rest.starts_with(b"\r\nINVITE sip:joe@example.com SIP/2.0\r\n"));
    assert!(contains(rest, b"Content-Length: 150\r\n"));

    // §3.1.1.11: the binary part carries NULs, bare CRs and bare LFs.
    let mpart = entry(&entries, "mpart01")?.bytes()?;
    let part = body(&mpart).ok_or("mpart01 has no body")?;
    assert_eq!(part.len(), 553);
    assert!(part.contains(&0));
    assert!(part.windows(2).any(|w| w[0] == b'\r' && w[1] != b'\n'));

    // §3.1.1.12: the reason phrase is non-ASCII UTF-8.
    let unreason = entry(&entries, "unreason")?.bytes()?;
    let status = std::str::from_utf8(first_line(&unreason))?;
    assert!(status.starts_with("SIP/2.0 200 = 2**3 * 5**2 "));
    assert!(!status.is_ascii());

    // §3.1.1.13 and §3.1.2.10: significant trailing spaces on the start line.
    let noreason = entry(&entries, "noreason")?.bytes()?;
    assert_eq!(first_line(&noreason), b"SIP/2.0 100 \r\n");
    let trws = entry(&entries, "trws")?.bytes()?;
    assert!(first_line(&trws).ends_with(b"SIP/2.0  \r\n"));

    // §3.1.2.9: two SP between every request-line element.
    let lwsstart = entry(&entries, "lwsstart")?.bytes()?;
    assert_eq!(
        first_line(&lwsstart),
        b"INVITE  sip:user@example.com  SIP/2.0\r\n"
    );
    Ok(())
}

/// Content-Length agrees with the body wherever the RFC does not make the
/// disagreement the point of the test.
#[test]
fn content_length_matches_body() -> TestResult {
    // clerr (too large), ncl (negative), mcl01 (two values), dblreq (trailing
    // octets), inv2543 (no Content-Length) and baddn (no empty line) are the
    // deliberate exceptions.
    let exempt = ["clerr", "ncl", "mcl01", "dblreq", "inv2543", "baddn"];
    for e in manifest::load()? {
        if exempt.contains(&e.name.as_str()) {
            continue;
        }
        let msg = e.bytes()?;
        let head = String::from_utf8_lossy(head(&msg));
        let declared = head
            .split("\r\n")
            .filter_map(|line| line.split_once(':'))
            .find(|(name, _)| {
                let name = name.trim();
                name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("l")
            })
            .map(|(_, value)| value.trim().parse::<usize>())
            .transpose()?;
        let body = body(&msg).ok_or_else(|| format!("{}: no empty line", e.name))?;
        assert_eq!(declared, Some(body.len()), "{}", e.name);
    }
    Ok(())
}
