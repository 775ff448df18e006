#include "core/secret.h"

#include <string.h>

namespace ferry {

Secret::~Secret() {
  if (!value_.empty()) explicit_bzero(value_.data(), value_.size());
}

}  // namespace ferry
