// A scratch directory for fuzz targets that read files: one per process,
// emptied before each input.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

namespace ferry::fuzz {

inline const std::string& ScratchDir() {
  static const std::string dir = [] {
    std::string d = (std::filesystem::temp_directory_path() /
                     ("ferry-fuzz-" + std::to_string(::getpid())))
                        .string();
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

inline void EmptyScratchDir() {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(ScratchDir(), ec)) {
    std::filesystem::remove_all(e.path(), ec);
  }
}

inline void WriteFile(const std::string& path, std::string_view content) {
  std::ofstream(path, std::ios::binary).write(content.data(),
                                              static_cast<std::streamsize>(content.size()));
}

}  // namespace ferry::fuzz
