"""Python's real huggingface_hub on a cache the test prepared (HF_HUB_CACHE, HF_ENDPOINT from the env).

  hf_cache.py download REPO REVISION   snapshot_download from HF_ENDPOINT into the cache
  hf_cache.py offline REPO REVISION    snapshot_download(local_files_only=True)
Prints JSON: {"dir": snapshot folder, "files": {relative path: sha256 of the content}}.
"""
import hashlib
import json
import os
import sys

from huggingface_hub import snapshot_download

mode, repo, revision = sys.argv[1:4]
kwargs = {"local_files_only": True} if mode == "offline" else {"allow_patterns": ["*.json", "*.safetensors", "*.model"]}
folder = snapshot_download(repo, revision=revision, **kwargs)
files = {}
for root, _, names in os.walk(folder):
    for n in names:
        p = os.path.join(root, n)
        with open(p, "rb") as f:
            files[os.path.relpath(p, folder)] = hashlib.sha256(f.read()).hexdigest()
print(json.dumps({"dir": folder, "files": files}))
