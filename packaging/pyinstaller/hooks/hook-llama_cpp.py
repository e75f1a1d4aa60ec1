# llama-cpp-python loads libllama/libggml with ctypes from llama_cpp/lib, which PyInstaller's
# analysis cannot see ("Shared library 'llama' not found"): collect the folder explicitly, in the
# same place relative to the package, so llama_cpp's own loader finds it.
from PyInstaller.utils.hooks import collect_data_files, collect_dynamic_libs

binaries = collect_dynamic_libs("llama_cpp", destdir="llama_cpp/lib")
datas = collect_data_files("llama_cpp")  # the server's and chat formats' data files
