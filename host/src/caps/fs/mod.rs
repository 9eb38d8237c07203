//! `infra:host/fs`: files under the roots granted to the plugin (`[plugin.<name>.fs] roots`),
//! each root a directory the operator names under `[roots]`.
//!
//! Every path is resolved by cap-std inside a directory handle of its root: `..` above the root
//! and absolute paths are refused before anything is opened ([`path`]), and a symlink that leads
//! out — planted, looping, or swapped in between two calls — is refused by construction when it
//! is resolved, whatever happened to the tree since the last call. One module per operation
//! family; [`access`] is the one way each runs (grant, event, deadline).

mod access;
mod errors;
mod list;
mod meta;
mod ops;
mod path;
mod read;
mod write;

use super::StoreState;
use super::infra::host::fs::{FileRead, Host, Listing, RootInfo, WriteOptions};
use super::infra::host::types::{ByteSource, CapError, FileStat};

impl Host for StoreState {
    async fn roots(&mut self) -> Vec<RootInfo> {
        access::granted_roots(&self.call)
    }

    async fn read(
        &mut self,
        root: String,
        path: String,
        max_inline: u64,
    ) -> Result<FileRead, CapError> {
        read::read(&self.call, &root, &path, max_inline).await
    }

    async fn write(
        &mut self,
        root: String,
        path: String,
        content: ByteSource,
        options: WriteOptions,
    ) -> Result<FileStat, CapError> {
        write::write(&self.call, &root, &path, content, options).await
    }

    async fn list_dir(
        &mut self,
        root: String,
        path: String,
        depth: u32,
        max_entries: u32,
    ) -> Result<Listing, CapError> {
        list::list_dir(&self.call, &root, &path, depth, max_entries).await
    }

    async fn stat(&mut self, root: String, path: String) -> Result<FileStat, CapError> {
        ops::stat(&self.call, &root, &path).await
    }

    async fn mkdir(&mut self, root: String, path: String) -> Result<(), CapError> {
        ops::mkdir(&self.call, &root, &path).await
    }

    async fn remove(
        &mut self,
        root: String,
        path: String,
        recursive: bool,
    ) -> Result<(), CapError> {
        ops::remove(&self.call, &root, &path, recursive).await
    }
}
