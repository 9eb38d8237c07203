//! `infra:host/fs`: files under the roots granted to the plugin. (Skeleton: filled in by the
//! fs work of issue 11.)

use super::StoreState;
use super::infra::host::fs::{FileRead, Host, Listing, RootInfo, WriteOptions};
use super::infra::host::types::{ByteSource, CapError, FileStat};

fn todo() -> CapError {
    CapError::Failed("fs: not built yet".into())
}

impl Host for StoreState {
    async fn roots(&mut self) -> Vec<RootInfo> {
        Vec::new()
    }
    async fn read(
        &mut self,
        _root: String,
        _path: String,
        _max: u64,
    ) -> Result<FileRead, CapError> {
        Err(todo())
    }
    async fn write(
        &mut self,
        _root: String,
        _path: String,
        _content: ByteSource,
        _options: WriteOptions,
    ) -> Result<FileStat, CapError> {
        Err(todo())
    }
    async fn list_dir(
        &mut self,
        _root: String,
        _path: String,
        _depth: u32,
        _max: u32,
    ) -> Result<Listing, CapError> {
        Err(todo())
    }
    async fn stat(&mut self, _root: String, _path: String) -> Result<FileStat, CapError> {
        Err(todo())
    }
    async fn mkdir(&mut self, _root: String, _path: String) -> Result<(), CapError> {
        Err(todo())
    }
    async fn remove(
        &mut self,
        _root: String,
        _path: String,
        _recursive: bool,
    ) -> Result<(), CapError> {
        Err(todo())
    }
}
