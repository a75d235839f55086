// `sqlx::migrate!` embeds the migrations at compile time; without this, adding a migration
// file would not rebuild the crate and an incremental build would ship the old set.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
