# Chroma picks its implementation classes by dotted name at run time (settings strings such as
# "chromadb.api.rust.RustBindingsAPI"), and reads its SQL migrations as data files.
from PyInstaller.utils.hooks import collect_data_files, collect_submodules

hiddenimports = collect_submodules(
    "chromadb",
    filter=lambda name: not any(part in name for part in (".test", "chromadb.cli", ".server.")),
)
hiddenimports += ["chromadb_rust_bindings"]
datas = collect_data_files("chromadb")
