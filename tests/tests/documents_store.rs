//! The document store at rest (issue 12's first part): what lands on disk and in the database
//! reveals no document, and a clinic's blob opens only for that clinic.

use base64::Engine as _;
use portal_domain::documents::vault::{self, VaultError};
use portal_tests::TestDb;
use portal_vault::{BlobKey, LocalDir, MasterKey, SealError};

const LETTER: &[u8] =
    b"%PDF-1.7\nImmunization record\nPatient: Ana Lima, born 1984-03-27\nMMR dose 2; Tdap 2021";

fn master(byte: u8) -> MasterKey {
    MasterKey::from_base64(&base64::engine::general_purpose::STANDARD.encode([byte; 32])).unwrap()
}

fn scratch() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("portal-vault-{}", uuid::Uuid::now_v7().simple()))
}

#[tokio::test]
async fn a_stored_document_shows_no_plaintext_on_disk_or_in_the_database() {
    let db = TestDb::create().await;
    let a = db.create_tenant("vault-a").await;
    let tenants = db.tenant_db().await;
    let dir = scratch();
    let store = LocalDir::open(&dir).await.unwrap();
    let name = BlobKey::new("docs/immunization-1").unwrap();

    let mut tx = tenants.begin(&a).await.unwrap();
    vault::put(&mut tx, &master(7), &store, &name, LETTER)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let on_disk = std::fs::read(dir.join("docs/immunization-1")).unwrap();
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
    // The database holds only the wrapped key: the wrong master key cannot use it.
    let mut tx = tenants.begin(&a).await.unwrap();
    let err = vault::get(&mut tx, &master(8), &store, &name)
        .await
        .unwrap_err();
    assert!(matches!(err, VaultError::Key(_)), "{err:?}");
    drop(tx);
    let mut tx = tenants.begin(&a).await.unwrap();
    assert_eq!(
        vault::get(&mut tx, &master(7), &store, &name)
            .await
            .unwrap(),
        LETTER
    );
    drop(tx);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_clinics_blob_does_not_open_for_another_clinic() {
    let db = TestDb::create().await;
    let a = db.create_tenant("vault-b1").await;
    let b = db.create_tenant("vault-b2").await;
    let tenants = db.tenant_db().await;
    let dir = scratch();
    let store = LocalDir::open(&dir).await.unwrap();
    let name = BlobKey::new("docs/letter").unwrap();

    let mut tx = tenants.begin(&a).await.unwrap();
    vault::put(&mut tx, &master(7), &store, &name, LETTER)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // Same deployment, same name, another clinic: its own key and its own binding refuse it.
    let mut tx = tenants.begin(&b).await.unwrap();
    let err = vault::get(&mut tx, &master(7), &store, &name)
        .await
        .unwrap_err();
    assert!(matches!(err, VaultError::Seal(SealError::Open)), "{err:?}");
    // Renamed on disk, it does not open under the new name either.
    std::fs::create_dir_all(dir.join("other")).unwrap();
    std::fs::copy(dir.join("docs/letter"), dir.join("other/copy")).unwrap();
    let mut tx = tenants.begin(&a).await.unwrap();
    let copy = BlobKey::new("other/copy").unwrap();
    let err = vault::get(&mut tx, &master(7), &store, &copy)
        .await
        .unwrap_err();
    assert!(matches!(err, VaultError::Seal(SealError::Open)), "{err:?}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn two_first_uses_at_once_agree_on_one_key() {
    let db = TestDb::create().await;
    let a = db.create_tenant("vault-c").await;
    let tenants = db.tenant_db().await;
    let dir = scratch();
    let store = LocalDir::open(&dir).await.unwrap();
    let (one, two) = (BlobKey::new("one").unwrap(), BlobKey::new("two").unwrap());

    let mut t1 = tenants.begin(&a).await.unwrap();
    let mut t2 = tenants.begin(&a).await.unwrap();
    let key = master(7);
    let commit_first = async {
        vault::put(&mut t1, &key, &store, &one, b"first")
            .await
            .unwrap();
        t1.commit().await.unwrap();
    };
    let second = async {
        vault::put(&mut t2, &key, &store, &two, b"second")
            .await
            .unwrap();
        t2.commit().await.unwrap();
    };
    tokio::join!(commit_first, second);

    let rows: i64 = {
        let mut tx = tenants.begin(&a).await.unwrap();
        sqlx::query_scalar("SELECT count(*) FROM data_keys")
            .fetch_one(tx.conn())
            .await
            .unwrap()
    };
    assert_eq!(rows, 1);
    let mut tx = tenants.begin(&a).await.unwrap();
    assert_eq!(
        vault::get(&mut tx, &master(7), &store, &one).await.unwrap(),
        b"first"
    );
    assert_eq!(
        vault::get(&mut tx, &master(7), &store, &two).await.unwrap(),
        b"second"
    );
    let _ = std::fs::remove_dir_all(dir);
}
