use std::path::Path;
use std::time::SystemTime;

use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::io::AsyncReadExt;

use super::id::check_extension;
use super::*;

/// A temporary directory removed on drop.
struct TempDir(tempfile::TempDir);

impl TempDir {
    fn new(_tag: &str) -> TempDir {
        TempDir(tempfile::tempdir().unwrap())
    }
}

fn kind(e: &anyhow::Error) -> &ArtifactError {
    e.downcast_ref()
        .unwrap_or_else(|| panic!("not an ArtifactError: {e:#}"))
}

fn meta(media_type: &str) -> ArtifactMeta {
    ArtifactMeta {
        media_type: media_type.into(),
        tool: "psql".into(),
        trace_id: "t-1".into(),
        description: "export of users".into(),
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn put_and_read_back_with_sha256_and_sidecar() {
    let dir = TempDir::new("put");
    let store = ArtifactStore::open(dir.0.path().join("artifacts")).unwrap();
    let data = b"id,name\n1,ada\n2,grace\n";
    let info = store
        .put(data, meta("Text/CSV; charset=utf-8"))
        .await
        .unwrap();
    assert_eq!(info.size, data.len() as u64);
    assert_eq!(info.sha256, hex::encode(Sha256::digest(data)));
    assert!(
        info.uri.starts_with(URI_SCHEME) && info.uri.ends_with(".csv"),
        "{}",
        info.uri
    );
    let id = info.id().unwrap();
    assert_eq!(id.as_str().len(), 24 + 4);
    OffsetDateTime::parse(&info.created, &Rfc3339).unwrap();
    assert_eq!(info.media_type, "Text/CSV; charset=utf-8");

    assert_eq!(store.info(&info.uri).await.unwrap(), info);
    assert_eq!(store.head(&info.uri, 1 << 20).await.unwrap(), data);
    let sidecar: ArtifactInfo =
        serde_json::from_slice(&std::fs::read(store.dir().join(format!("{id}.json"))).unwrap())
            .unwrap();
    assert_eq!(sidecar, info);
    assert_eq!(
        names(store.dir()),
        [id.to_string(), format!("{id}.json")],
        "no temp files left"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for name in names(store.dir()) {
            let mode = std::fs::metadata(store.dir().join(&name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "{name} must be private, is {mode:o}");
        }
    }

    let (mut file, i2) = store.reader(&info.uri).await.unwrap();
    let mut all = Vec::new();
    file.read_to_end(&mut all).await.unwrap();
    assert_eq!((all.as_slice(), i2), (&data[..], info));

    let plain = store.put(b"", ArtifactMeta::default()).await.unwrap();
    assert_eq!(plain.media_type, DEFAULT_MEDIA_TYPE);
    assert_eq!(plain.size, 0);
    assert!(!plain.uri.contains('.'));
}

#[tokio::test]
async fn streaming_50_mib_has_the_right_size_and_sha256() {
    let dir = TempDir::new("stream");
    let store = ArtifactStore::open(dir.0.path()).unwrap();
    let mut w = store
        .writer(meta("application/octet-stream"))
        .await
        .unwrap();
    let mut expect = Sha256::new();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let chunk_len = 64 * 1024 + 13; // odd size, so chunks do not align with anything
    let total = 50 * 1024 * 1024;
    let mut chunk = vec![0u8; chunk_len];
    let mut written = 0;
    while written < total {
        let n = chunk_len.min(total - written);
        for b in &mut chunk[..n] {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *b = state as u8;
        }
        w.write(&chunk[..n]).await.unwrap();
        expect.update(&chunk[..n]);
        written += n;
    }
    assert_eq!(w.written(), total as u64);
    assert!(
        store.list(10).await.unwrap().is_empty(),
        "nothing is visible before finish"
    );
    let info = w.finish().await.unwrap();
    assert_eq!(info.size, total as u64);
    assert_eq!(info.sha256, hex::encode(expect.finalize()));
    let on_disk = std::fs::read(store.data_path(&info.id().unwrap())).unwrap();
    assert_eq!(on_disk.len(), total);
    assert_eq!(hex::encode(Sha256::digest(&on_disk)), info.sha256);
}

#[tokio::test]
async fn dropping_an_unfinished_writer_leaves_nothing() {
    let dir = TempDir::new("drop");
    let store = ArtifactStore::open(dir.0.path()).unwrap();
    let mut w = store.writer(meta("")).await.unwrap();
    w.write(b"partial download").await.unwrap();
    assert_eq!(
        names(dir.0.path()).len(),
        1,
        "the temp file exists while writing"
    );
    drop(w);
    assert!(names(dir.0.path()).is_empty(), "{:?}", names(dir.0.path()));
    assert!(store.list(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn ranges_heads_tails_and_lines() {
    let dir = TempDir::new("ranges");
    let store = ArtifactStore::open(dir.0.path()).unwrap();
    let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    let uri = store.put(&data, meta("")).await.unwrap().uri;
    assert_eq!(store.read_range(&uri, 10, 5).await.unwrap(), &data[10..15]);
    assert_eq!(
        store.read_range(&uri, 990, 100).await.unwrap(),
        &data[990..]
    );
    assert!(store.read_range(&uri, 1000, 10).await.unwrap().is_empty());
    assert!(
        store
            .read_range(&uri, u64::MAX, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.read_range(&uri, 0, 0).await.unwrap().is_empty());
    assert_eq!(store.head(&uri, 3).await.unwrap(), &data[..3]);
    assert_eq!(store.tail(&uri, 3).await.unwrap(), &data[997..]);
    assert_eq!(store.tail(&uri, 5000).await.unwrap(), data);

    let text = "one\ntwo\nthree\nfour\nfive\n";
    let uri = store
        .put(text.as_bytes(), meta("text/plain"))
        .await
        .unwrap()
        .uri;
    assert_eq!(store.lines_head(&uri, 2, 1000).await.unwrap(), "one\ntwo\n");
    assert_eq!(store.lines_head(&uri, 0, 1000).await.unwrap(), "");
    assert_eq!(store.lines_head(&uri, 99, 1000).await.unwrap(), text);
    assert_eq!(
        store.lines_head(&uri, 3, 6).await.unwrap(),
        "one\n",
        "byte cap wins"
    );
    assert_eq!(
        store.lines_tail(&uri, 2, 1000).await.unwrap(),
        "four\nfive\n"
    );
    assert_eq!(store.lines_tail(&uri, 0, 1000).await.unwrap(), "");
    assert_eq!(store.lines_tail(&uri, 99, 1000).await.unwrap(), text);
    assert_eq!(
        store.lines_tail(&uri, 99, 12).await.unwrap(),
        "four\nfive\n",
        "a cut line is left out"
    );
    assert_eq!(
        store.lines_tail(&uri, 2, 3).await.unwrap(),
        "ve\n",
        "a lone cut line is shown in part"
    );
    assert_eq!(
        store.lines_head(&uri, 1, 2).await.unwrap(),
        "on",
        "a lone cut line is shown in part"
    );
    let uri = store.put(b"a\nb", meta("")).await.unwrap().uri;
    assert_eq!(store.lines_tail(&uri, 1, 100).await.unwrap(), "b");
    assert_eq!(
        store.lines_head(&uri, 5, 100).await.unwrap(),
        "a\nb",
        "the unterminated last line counts"
    );
}

#[tokio::test]
async fn list_is_newest_first_and_skips_strays() {
    let dir = TempDir::new("list");
    let store = ArtifactStore::open(dir.0.path()).unwrap();
    let mut uris = Vec::new();
    for i in 0..4 {
        uris.push(
            store
                .put(format!("{i}").as_bytes(), meta(""))
                .await
                .unwrap()
                .uri,
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    // Strays: a foreign file, a sidecar without data, a damaged sidecar, a JSON artifact.
    std::fs::write(dir.0.path().join("notes.txt"), "x").unwrap();
    std::fs::write(dir.0.path().join("20250101T000000-00000000.json"), "{}").unwrap();
    std::fs::write(dir.0.path().join("20250101T000000-11111111"), "data").unwrap();
    std::fs::write(
        dir.0.path().join("20250101T000000-11111111.json"),
        "not json",
    )
    .unwrap();
    let json_artifact = store
        .put(b"{\"uri\":\"artifact://x\"}", meta("application/json"))
        .await
        .unwrap();
    uris.push(json_artifact.uri);
    let listed: Vec<String> = store
        .list(100)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.uri)
        .collect();
    let mut want = uris.clone();
    want.reverse();
    assert_eq!(listed, want);
    assert_eq!(store.list(2).await.unwrap().len(), 2);
}

#[tokio::test]
async fn hostile_uris_cannot_leave_the_directory() {
    let dir = TempDir::new("traversal");
    let store = ArtifactStore::open(dir.0.path().join("artifacts")).unwrap();
    // A file just outside the store that a traversal would reach.
    std::fs::write(dir.0.path().join("secret.txt"), "top secret").unwrap();
    std::fs::write(dir.0.path().join("secret.txt.json"), "{}").unwrap();
    let good = "20250101T120000-0a1b2c3d";
    for uri in [
        "artifact://../secret.txt",
        "artifact://..",
        "artifact://.",
        "artifact://",
        "artifact:///etc/passwd",
        "artifact://%2e%2e/secret.txt",
        &format!("artifact://{good}/../../secret.txt"),
        &format!("artifact://{good}/.."),
        &format!("artifact://{good}.csv/../x"),
        &format!("artifact://{good}..csv"),
        &format!("artifact://{good}."),
        &format!("artifact://{good}.c\\v"),
        &format!("artifact://{good}\0"),
        &format!("artifact://{good} "),
        &format!("artifact://{good}.ABC"),
        "artifact://20250101T120000-0A1B2C3D",
        "artifact://20250101T120000-0a1b2c3",
        "artifact://20250101T120000-0a1b2c3d0",
        "artifact://2025010xT120000-0a1b2c3d",
        &format!("artifact://{good}.aaaaaaaaaaaaaaaaa"),
        "file:///etc/passwd",
        "/etc/passwd",
        good,
    ] {
        let err = store.info(uri).await.unwrap_err();
        assert!(
            matches!(kind(&err), ArtifactError::InvalidUri { .. }),
            "{uri:?}: {err}"
        );
        assert!(err.to_string().contains("{\"action\":\"list\"}"), "{err}");
        let err = store.read_range(uri, 0, 100).await.unwrap_err();
        assert!(
            matches!(kind(&err), ArtifactError::InvalidUri { .. }),
            "{uri:?}"
        );
        let err = store.tail(uri, 100).await.unwrap_err();
        assert!(
            matches!(kind(&err), ArtifactError::InvalidUri { .. }),
            "{uri:?}"
        );
        assert!(store.reader(uri).await.is_err(), "{uri:?}");
    }
    // A well-formed URI that names nothing is "not found", with advice.
    let err = store.info(&format!("artifact://{good}")).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("artifact://{good} not found; list artifacts with {{\"action\":\"list\"}}")
    );
    let err = store
        .head(&format!("artifact://{good}.csv"), 10)
        .await
        .unwrap_err();
    assert!(matches!(kind(&err), ArtifactError::NotFound { .. }));
    // A hostile media type (a remote server's Content-Type) never reaches the file name.
    for media_type in ["../../x", "text/csv/../../x", "a/b; ext=../x", "\0"] {
        let info = store.put(b"x", meta(media_type)).await.unwrap();
        let id = info.id().unwrap();
        assert!(!id.as_str().contains('.'), "{media_type:?} gave {id}");
        assert_eq!(store.data_path(&id).parent(), Some(store.dir()));
        assert_eq!(
            info.media_type, media_type,
            "recorded as given, used for nothing"
        );
    }
}

#[tokio::test]
async fn a_sidecar_naming_another_artifact_is_not_trusted() {
    let dir = TempDir::new("forged");
    let store = ArtifactStore::open(dir.0.path()).unwrap();
    let real = store.put(b"real", meta("")).await.unwrap();
    let fake = "20250101T000000-deadbeef";
    std::fs::write(dir.0.path().join(fake), "data").unwrap();
    // The fake's sidecar is a copy of the real one, so it names the real URI.
    std::fs::write(
        dir.0.path().join(format!("{fake}.json")),
        serde_json::to_vec(&real).unwrap(),
    )
    .unwrap();
    let err = store.info(&format!("artifact://{fake}")).await.unwrap_err();
    assert!(matches!(kind(&err), ArtifactError::NotFound { .. }));
    assert_eq!(store.list(10).await.unwrap(), vec![real]);
}

#[test]
fn preview_is_utf8_safe_and_bounded() {
    assert_eq!(preview(b"hello", 10), "hello");
    assert_eq!(preview(b"hello world", 8), "hello…");
    let text = "ééééé".as_bytes(); // 10 bytes
    for max in 0..12 {
        let p = preview(text, max);
        assert!(p.len() <= max, "max {max}: {p:?} is {} bytes", p.len());
        assert!(
            !p.contains('\u{FFFD}'),
            "max {max}: a character was split: {p:?}"
        );
    }
    assert_eq!(preview(text, 7), "éé…");
    let binary: Vec<u8> = (0..=255u8).collect();
    for max in [0, 1, 3, 4, 10, 100, 300] {
        let p = preview(&binary, max);
        assert!(p.len() <= max, "max {max}: {} bytes", p.len());
    }
    // Continuation bytes with no lead byte do not make the cut walk back without end.
    let p = preview(&[0x80; 50], 20);
    assert!(p.len() <= 20);
    assert_eq!(preview("日本語のテキスト".as_bytes(), 10), "日本…");
}

#[test]
fn media_types_map_to_extensions() {
    assert_eq!(extension_for("text/csv"), Some("csv"));
    assert_eq!(
        extension_for("Application/JSON; charset=utf-8"),
        Some("json")
    );
    assert_eq!(extension_for("application/x-ndjson"), Some("jsonl"));
    assert_eq!(extension_for("application/octet-stream"), None);
    assert_eq!(extension_for(""), None);
    for ext in [
        "csv", "json", "jsonl", "txt", "md", "html", "xml", "yaml", "sql", "gz", "tar", "zip",
        "pdf", "png", "jpg",
    ] {
        check_extension(ext).unwrap();
    }
}

#[tokio::test]
async fn stale_temp_files_are_swept_on_open_and_fresh_ones_kept() {
    let dir = TempDir::new("sweep");
    let stale = dir.0.path().join(".tmp-0000000000000001");
    let fresh = dir.0.path().join(".tmp-0000000000000002");
    std::fs::write(&stale, "crashed writer").unwrap();
    std::fs::write(&fresh, "live writer").unwrap();
    let old = SystemTime::now() - STALE_TEMP - Duration::from_secs(60);
    std::fs::File::options()
        .write(true)
        .open(&stale)
        .unwrap()
        .set_modified(old)
        .unwrap();
    ArtifactStore::open(dir.0.path()).unwrap();
    assert!(!stale.exists());
    assert!(fresh.exists());
}

#[test]
fn ids_parse_strictly() {
    for ok in [
        "20250101T120000-0a1b2c3d",
        "20250101T120000-0a1b2c3d.csv",
        "20250101T120000-0a1b2c3d.tar.gz",
        "20250101T120000-0a1b2c3d.jsonl",
    ] {
        let id = ArtifactId::parse(ok).unwrap();
        assert_eq!(ArtifactId::from_uri(&id.uri()).unwrap(), id);
    }
    assert!(ArtifactId::parse("20250101T120000-0a1b2c3d.tar.").is_err());
    assert!(ArtifactId::parse("20250101T120000-0a1b2c3d.-x").is_err());
    assert!(ArtifactId::parse("20250101t120000-0a1b2c3d").is_err());
    assert!(ArtifactId::parse("20250101T120000_0a1b2c3d").is_err());
}

fn quota(total_bytes: u64, count: u64) -> Quota {
    Quota {
        artifact_bytes: 1000,
        total_bytes,
        count,
    }
}

#[tokio::test]
async fn retention_removes_the_oldest_unpinned_first() {
    let dir = TempDir::new("quota");
    let store = ArtifactStore::open(dir.0.path())
        .unwrap()
        .with_quota(quota(300, 100));
    let a = store.put(&[b'a'; 100], meta("")).await.unwrap();
    let b = store.put(&[b'b'; 100], meta("")).await.unwrap();
    let c = store.put(&[b'c'; 100], meta("")).await.unwrap();
    store.pin(&a.uri, true).await.unwrap();
    // Full: the next one removes b (a is older but pinned).
    let d = store.put(&[b'd'; 100], meta("")).await.unwrap();
    assert!(
        store.info(&a.uri).await.unwrap().pinned,
        "a is kept, pinned"
    );
    assert!(
        store.info(&b.uri).await.is_err(),
        "b, the oldest unpinned, went"
    );
    assert!(store.info(&c.uri).await.is_ok() && store.info(&d.uri).await.is_ok());
    let usage = store.usage().unwrap();
    assert_eq!(
        (usage["count"].as_u64(), usage["bytes"].as_u64()),
        (Some(3), Some(300))
    );
    assert_eq!(usage["pinned"], 1);
}

#[tokio::test]
async fn the_count_quota_holds_too() {
    let dir = TempDir::new("count");
    let store = ArtifactStore::open(dir.0.path())
        .unwrap()
        .with_quota(quota(u64::MAX - 1, 2));
    let a = store.put(b"1", meta("")).await.unwrap();
    store.put(b"2", meta("")).await.unwrap();
    store.put(b"3", meta("")).await.unwrap();
    assert!(store.info(&a.uri).await.is_err(), "the oldest went");
    assert_eq!(store.list(10).await.unwrap().len(), 2);
}

#[tokio::test]
async fn what_cannot_fit_is_refused_and_removes_nothing() {
    let dir = TempDir::new("full");
    let store = ArtifactStore::open(dir.0.path())
        .unwrap()
        .with_quota(quota(250, 100));
    let a = store.put(&[b'a'; 100], meta("")).await.unwrap();
    let b = store.put(&[b'b'; 100], meta("")).await.unwrap();
    store.pin(&a.uri, true).await.unwrap();
    store.pin(&b.uri, true).await.unwrap();
    let e = store.put(&[b'c'; 100], meta("")).await.unwrap_err();
    assert!(matches!(kind(&e), ArtifactError::Full(_)), "{e:#}");
    let text = format!("{e:#}");
    assert!(
        text.contains("unpin") && text.contains("artifacts_quota_bytes"),
        "{text}"
    );
    assert!(store.info(&a.uri).await.is_ok() && store.info(&b.uri).await.is_ok());
    // One artifact over the per-artifact limit is refused as it streams.
    store.pin(&b.uri, false).await.unwrap();
    let mut w = store.writer(meta("")).await.unwrap();
    let e = w.write(&[0u8; 1001]).await.unwrap_err();
    assert!(format!("{e:#}").contains("artifact_bytes"), "{e:#}");
    drop(w);
    assert!(
        names(dir.0.path())
            .iter()
            .all(|n| !n.starts_with(TEMP_PREFIX))
    );
}

#[tokio::test]
async fn delete_removes_data_sidecar_and_pin() {
    let dir = TempDir::new("delete");
    let store = ArtifactStore::open(dir.0.path()).unwrap();
    let a = store.put(b"bye", meta("text/plain")).await.unwrap();
    store.pin(&a.uri, true).await.unwrap();
    store.delete(&a.uri).await.unwrap();
    assert!(names(dir.0.path()).is_empty(), "{:?}", names(dir.0.path()));
    assert!(
        store.delete(&a.uri).await.is_err(),
        "a second delete: not found"
    );
    assert!(store.delete("artifact://../../etc/passwd").await.is_err());
}

proptest::proptest! {
    /// No string an agent sends parses to an id that names anything but a plain file
    /// directly inside the store.
    #[test]
    fn no_parsed_id_leaves_the_store(s in "[0-9a-zA-Z./\\\\:%-]{0,40}|20250101T120000-[0-9a-f]{8}[./a-z0-9%]{0,12}") {
        if let Ok(id) = ArtifactId::parse(&s) {
            let dir = Path::new("/store");
            let path = ArtifactStore {
                dir: dir.to_path_buf(),
                redactor: None,
                quota: Quota::UNLIMITED,
                publishing: Default::default(),
            }
            .data_path(&id);
            proptest::prop_assert_eq!(path.parent(), Some(dir));
            proptest::prop_assert!(!s.contains('/') && !s.contains("..") && !s.starts_with('.'));
            proptest::prop_assert!(ArtifactId::from_uri(&id.uri()).is_ok());
        }
    }
}
