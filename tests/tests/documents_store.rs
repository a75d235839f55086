//! The document store at rest (issue 12's first part): what lands on disk and in the database
//! reveals no document, and a clinic's blob opens only for that clinic, under its own name.

use base64::Engine as _;
use portal_domain::documents::vault::{self, VaultError};
use portal_tenants::{Tenant, TenantDb};
use portal_tests::TestDb;
use portal_vault::{BlobKey, LocalDir, MasterKey, SealError, StoreError};

const LETTER: &[u8] =
    b"%PDF-1.7\nImmunization record\nPatient: Ana Lima, born 1984-03-27\nMMR dose 2; Tdap 2021";

fn master(byte: u8) -> MasterKey {
    MasterKey::from_base64(&base64::engine::general_purpose::STANDARD.encode([byte; 32])).unwrap()
}

/// A database with one clinic, and a local store in a scratch directory removed afterwards
/// (also when the test fails).
struct Setup {
    db: TestDb,
    tenants: TenantDb,
    a: Tenant,
    dir: std::path::PathBuf,
    store: LocalDir,
}

impl Setup {
    async fn new(slug: &str) -> Self {
        let db = TestDb::create().await;
        let a = db.create_tenant(slug).await;
        let tenants = db.tenant_db().await;
        let dir =
            std::env::temp_dir().join(format!("portal-vault-{}", uuid::Uuid::now_v7().simple()));
        let store = LocalDir::open(&dir).await.unwrap();
        Self {
            db,
            tenants,
            a,
            dir,
            store,
        }
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn a_stored_document_shows_no_plaintext_on_disk_or_in_the_database() {
    let s = Setup::new("vault-a").await;
    let (tenants, a, dir, store) = (&s.tenants, &s.a, &s.dir, &s.store);
    let name = BlobKey::new("docs/immunization-1").unwrap();

    let key = vault::data_key(tenants, a, &master(7)).await.unwrap();
    vault::put(&key, a.id(), store, &name, LETTER)
        .await
        .unwrap();

    let on_disk = std::fs::read(dir.join(a.id().to_string()).join("docs/immunization-1")).unwrap();
    for needle in [
        &b"Ana Lima"[..],
        b"Immunization",
        b"%PDF",
        b"1984-03-27",
        b"Tdap",
    ] {
        assert!(
            !on_disk.windows(needle.len()).any(|w| w == needle),
            "{} is readable in the stored file",
            String::from_utf8_lossy(needle)
        );
    }
    // The database holds only the wrapped key: another master key cannot use it.
    let err = vault::data_key(tenants, a, &master(8)).await.unwrap_err();
    assert!(matches!(err, VaultError::Key(_)), "{err:?}");
    let again = vault::data_key(tenants, a, &master(7)).await.unwrap();
    assert_eq!(
        vault::get(&again, a.id(), store, &name).await.unwrap(),
        LETTER
    );
}

#[tokio::test]
async fn a_clinics_blob_opens_only_for_that_clinic_under_its_own_name() {
    let s = Setup::new("vault-b1").await;
    let (db, tenants, a, dir, store) = (&s.db, &s.tenants, &s.a, &s.dir, &s.store);
    let b = db.create_tenant("vault-b2").await;
    let name = BlobKey::new("docs/letter").unwrap();
    let key_a = vault::data_key(tenants, a, &master(7)).await.unwrap();
    let key_b = vault::data_key(tenants, &b, &master(7)).await.unwrap();

    vault::put(&key_a, a.id(), store, &name, LETTER)
        .await
        .unwrap();
    // The same name in another clinic is another blob: it is not there, and writing it
    // leaves the first clinic's alone.
    let err = vault::get(&key_b, b.id(), store, &name).await.unwrap_err();
    assert!(
        matches!(err, VaultError::Store(StoreError::NotFound)),
        "{err:?}"
    );
    vault::put(&key_b, b.id(), store, &name, b"clinic b's own")
        .await
        .unwrap();
    assert_eq!(
        vault::get(&key_a, a.id(), store, &name).await.unwrap(),
        LETTER
    );

    // A's file copied over B's does not open for B (B's key, B's binding) …
    let (dir_a, dir_b) = (dir.join(a.id().to_string()), dir.join(b.id().to_string()));
    std::fs::copy(dir_a.join("docs/letter"), dir_b.join("docs/letter")).unwrap();
    let err = vault::get(&key_b, b.id(), store, &name).await.unwrap_err();
    assert!(matches!(err, VaultError::Seal(SealError::Open)), "{err:?}");
    // … and renamed within A, it does not open under the new name either.
    std::fs::create_dir_all(dir_a.join("other")).unwrap();
    std::fs::copy(dir_a.join("docs/letter"), dir_a.join("other/copy")).unwrap();
    let copy = BlobKey::new("other/copy").unwrap();
    let err = vault::get(&key_a, a.id(), store, &copy).await.unwrap_err();
    assert!(matches!(err, VaultError::Seal(SealError::Open)), "{err:?}");
}

#[tokio::test]
async fn two_first_uses_at_once_agree_on_one_key() {
    let s = Setup::new("vault-c").await;
    let (tenants, a, store) = (&s.tenants, &s.a, &s.store);
    let name = BlobKey::new("one").unwrap();

    let m = master(7);
    let (first, second) = tokio::join!(
        vault::data_key(tenants, a, &m),
        vault::data_key(tenants, a, &m)
    );
    let (first, second) = (first.unwrap(), second.unwrap());
    vault::put(&first, a.id(), store, &name, b"sealed by one")
        .await
        .unwrap();
    assert_eq!(
        vault::get(&second, a.id(), store, &name).await.unwrap(),
        b"sealed by one"
    );
    let mut tx = tenants.begin(a).await.unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM data_keys")
        .fetch_one(tx.conn())
        .await
        .unwrap();
    assert_eq!(rows, 1);
}

#[tokio::test]
async fn documents_in_s3_compatible_storage_are_sealed_and_whole() {
    let s3 = portal_tests::S3Server::start().await;
    let store = portal_vault::S3Blobs::new(&s3.settings()).unwrap();
    let db = TestDb::create().await;
    let a = db.create_tenant("vault-s3").await;
    let tenants = db.tenant_db().await;
    let key = vault::data_key(&tenants, &a, &master(7)).await.unwrap();
    let name = BlobKey::new("docs/summary").unwrap();

    vault::put(&key, a.id(), &store, &name, LETTER)
        .await
        .unwrap();
    assert_eq!(
        vault::get(&key, a.id(), &store, &name).await.unwrap(),
        LETTER
    );
    // The object as the storage provider holds it: sealed, under the clinic's id.
    use portal_vault::BlobStore as _;
    let raw_name = BlobKey::new(&format!("{}/docs/summary", a.id())).unwrap();
    let raw = store.get(&raw_name).await.unwrap();
    for needle in [&b"Ana Lima"[..], b"Immunization", b"%PDF"] {
        assert!(!raw.windows(needle.len()).any(|w| w == needle));
    }
    vault::put(&key, a.id(), &store, &name, b"replaced")
        .await
        .unwrap();
    assert_eq!(
        vault::get(&key, a.id(), &store, &name).await.unwrap(),
        b"replaced"
    );
    store.delete(&raw_name).await.unwrap();
    store.delete(&raw_name).await.unwrap();
    let err = vault::get(&key, a.id(), &store, &name).await.unwrap_err();
    assert!(
        matches!(err, VaultError::Store(StoreError::NotFound)),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_unreachable_object_store_fails_clearly_instead_of_hanging() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let store = portal_vault::S3Blobs::new(&portal_vault::S3Settings {
        endpoint: format!("http://127.0.0.1:{port}"),
        bucket: "portal-documents".into(),
        region: "us-east-1".into(),
        access_key_id: "test".into(),
        secret_access_key: "test".into(),
    })
    .unwrap();
    use portal_vault::BlobStore as _;
    let name = BlobKey::new("ten_x/doc").unwrap();
    // A generous guard so a regression shows as a failure, not a stuck test run.
    let put = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        store.put(&name, b"sealed bytes".to_vec()),
    )
    .await
    .expect("the upload gives up");
    assert!(matches!(put, Err(StoreError::Unavailable(_))), "{put:?}");
    let got = tokio::time::timeout(std::time::Duration::from_secs(60), store.get(&name))
        .await
        .expect("the read gives up");
    assert!(matches!(got, Err(StoreError::Unavailable(_))), "{got:?}");
}
