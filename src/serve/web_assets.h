// The dashboard's files (web/), compiled into the program by
// cmake/embed_web.cmake, so `ferry serve` needs no files and no CDN.
#pragma once

#include <string_view>
#include <vector>

namespace ferry::serve {

struct WebAsset {
  std::string_view path;          // "/index.html", "/app.js" ...
  std::string_view content_type;  // "text/html; charset=utf-8" ...
  std::string_view data;
};

// Every file of web/, in name order.
const std::vector<WebAsset>& WebAssets();

}  // namespace ferry::serve
