//! The declarative function-table macro and the one function that resolves its symbols.

use std::ffi::{c_void, CStr};
use std::path::Path;

/// One C function of a table, as declared: used by the tests that check the table against the
/// pinned header.
#[derive(Debug, Clone, Copy)]
pub struct Signature {
    /// The C symbol name.
    pub name: &'static str,
    /// `false` for deprecated functions, which are optional in the table.
    pub required: bool,
    /// Parameter names as declared in the table.
    pub param_names: &'static [&'static str],
    /// Parameter types, as the Rust tokens written in the table.
    pub param_types: &'static [&'static str],
    /// Return type as Rust tokens; `()` for `void`.
    pub return_type: &'static str,
}

/// A required symbol that a library does not export (the loader turns it into
/// `LoadError::MissingSymbol`; `sys` itself knows nothing of the safe layer's errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingSymbol {
    /// The library searched.
    pub path: std::path::PathBuf,
    /// The C symbol name.
    pub symbol: String,
}

/// Somewhere symbols can be looked up: a dlopened library with its path.
pub trait SymbolSource {
    /// The file the symbols come from (for error messages).
    fn path(&self) -> &Path;
    /// The address of `name`, or `None` when the library does not export it.
    fn lookup(&self, name: &CStr) -> Option<*const c_void>;

    /// Resolves `name`; a required symbol that is missing becomes [`MissingSymbol`].
    fn resolve(&self, name: &CStr) -> Result<*const c_void, MissingSymbol> {
        self.lookup(name).ok_or_else(|| MissingSymbol {
            path: self.path().to_path_buf(),
            symbol: name.to_string_lossy().into_owned(),
        })
    }
}

/// Declares a table of C function pointers from C-like signatures.
///
/// ```text
/// function_table! {
///     /// docs
///     pub struct LlamaFunctions {
///         required { fn llama_backend_init(); }
///         optional { fn llama_free_model(model: *mut llama_model); }
///     }
/// }
/// ```
///
/// Generates the struct (required entries as `unsafe extern "C" fn`, optional ones as `Option`),
/// `load(&dyn SymbolSource)` and `SIGNATURES`.
#[macro_export]
#[doc(hidden)]
macro_rules! function_table {
    (
        $(#[$meta:meta])*
        $vis:vis struct $table:ident {
            required {
                $( fn $req:ident ( $($rp:ident : $rt:ty),* $(,)? ) $(-> $rr:ty)? ; )*
            }
            optional {
                $( fn $opt:ident ( $($op:ident : $ot:ty),* $(,)? ) $(-> $or:ty)? ; )*
            }
        }
    ) => {
        $(#[$meta])*
        #[allow(non_snake_case)]
        #[derive(Clone, Copy)]
        $vis struct $table {
            $(
                #[doc = concat!("`", stringify!($req), "` (required).")]
                pub $req: unsafe extern "C" fn($($rp: $rt),*) $(-> $rr)?,
            )*
            $(
                #[doc = concat!("`", stringify!($opt), "` (deprecated in the header: optional).")]
                pub $opt: Option<unsafe extern "C" fn($($op: $ot),*) $(-> $or)?>,
            )*
        }

        impl $table {
            /// Every function of the table as declared, for checks against the C header.
            pub const SIGNATURES: &'static [$crate::sys::Signature] = &[
                $( $crate::sys::Signature {
                    name: stringify!($req),
                    required: true,
                    param_names: &[$(stringify!($rp)),*],
                    param_types: &[$(stringify!($rt)),*],
                    return_type: $crate::function_table!(@ret $($rr)?),
                }, )*
                $( $crate::sys::Signature {
                    name: stringify!($opt),
                    required: false,
                    param_names: &[$(stringify!($op)),*],
                    param_types: &[$(stringify!($ot)),*],
                    return_type: $crate::function_table!(@ret $($or)?),
                }, )*
            ];

            /// Resolves every entry from `source`.
            ///
            /// # Errors
            /// [`MissingSymbol`]($crate::sys::MissingSymbol) for the first required symbol the library
            /// lacks.
            pub fn load(source: &dyn $crate::sys::SymbolSource) -> ::std::result::Result<Self, $crate::sys::MissingSymbol> {
                Ok(Self {
                    $(
                        $req: {
                            let address = source.resolve(
                                // A literal with one trailing NUL and no interior NUL.
                                match ::std::ffi::CStr::from_bytes_with_nul(concat!(stringify!($req), "\0").as_bytes()) {
                                    Ok(name) => name,
                                    Err(_) => unreachable!(),
                                },
                            )?;
                            // SAFETY: the address was exported under this name by a library whose
                            // ABI is verified before any call; the signature is the pinned
                            // header's (checked by tests/header_table.rs). Function and data
                            // pointers have the same size on every supported target.
                            unsafe {
                                ::std::mem::transmute::<*const ::std::ffi::c_void, unsafe extern "C" fn($($rt),*) $(-> $rr)?>(address)
                            }
                        },
                    )*
                    $(
                        $opt: {
                            let name = match ::std::ffi::CStr::from_bytes_with_nul(concat!(stringify!($opt), "\0").as_bytes()) {
                                Ok(name) => name,
                                Err(_) => unreachable!(),
                            };
                            // SAFETY: as for required entries: same provenance, signature from the
                            // pinned header.
                            source.lookup(name).map(|address| unsafe {
                                ::std::mem::transmute::<*const ::std::ffi::c_void, unsafe extern "C" fn($($ot),*) $(-> $or)?>(address)
                            })
                        },
                    )*
                })
            }
        }
    };
    (@ret) => { "()" };
    (@ret $r:ty) => { stringify!($r) };
}
