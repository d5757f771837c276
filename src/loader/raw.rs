//! One dlopened shared library: the only place that calls the platform loader.

use std::ffi::{c_void, CStr};
use std::path::{Path, PathBuf};

use crate::error::LoadError;
use crate::sys::SymbolSource;

/// A shared library opened with `RTLD_NOW | RTLD_LOCAL` (on Unix), with the path it came from.
///
/// Public for the test suite only (hidden from the documentation).
#[doc(hidden)]
pub struct RawLibrary {
    path: PathBuf,
    library: libloading::Library,
}

impl std::fmt::Debug for RawLibrary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawLibrary")
            .field("path", &self.path)
            .finish()
    }
}

impl RawLibrary {
    /// Opens `path`, resolving all its undefined symbols now and keeping its symbols local.
    ///
    /// # Safety
    /// Opening a library runs its initialisers. The caller must only open libraries it means to
    /// use as llama.cpp/ggml builds (their initialisers are plain C++ static constructors).
    ///
    /// # Errors
    /// `Open` with the path and the loader's reason.
    pub unsafe fn open(path: &Path) -> Result<Self, LoadError> {
        #[cfg(unix)]
        // SAFETY: the caller accepts running the library's initialisers (see above).
        let opened = unsafe {
            libloading::os::unix::Library::open(
                Some(path),
                libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_LOCAL,
            )
        }
        .map(libloading::Library::from);
        #[cfg(not(unix))]
        // SAFETY: as above.
        let opened = unsafe { libloading::Library::new(path) };
        let library = opened.map_err(|e| LoadError::Open {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            library,
        })
    }

    /// Keeps the library mapped for the rest of the process (llama.cpp keeps threads and
    /// registries inside it that must not be unmapped).
    pub fn leak(self) {
        std::mem::forget(self.library);
    }
}

impl SymbolSource for RawLibrary {
    fn path(&self) -> &Path {
        &self.path
    }

    fn lookup(&self, name: &CStr) -> Option<*const c_void> {
        // SAFETY: only the symbol's address is taken; nothing is called or read through it
        // here, and the address is used only while the library stays mapped (it is leaked once
        // in use, see `leak`).
        let address = unsafe {
            self.library
                .get::<*const c_void>(name)
                .ok()?
                .try_as_raw_ptr()?
        };
        (!address.is_null()).then_some(address as *const c_void)
    }
}
