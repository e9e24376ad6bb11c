{
  "includes": ["native/sources.gypi"],
  "targets": [
    {
      "target_name": "dpo_native",
      "sources": ["<@(dpo_sources)"],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "native",
        "<!@(node scripts/find-libtorch.js --include-dirs)"
      ],
      "libraries": ["<!@(node scripts/find-libtorch.js --libs)"],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except_all"],
      "defines": ["NAPI_VERSION=8"],
      "cflags_cc!": ["-fno-rtti", "-fno-exceptions", "-std=gnu++17", "-std=gnu++1y"],
      "cflags_cc": ["-std=c++17", "-frtti", "-fexceptions", "-O2", "-Wno-unused-parameter"]
    }
  ]
}
