// SQLite's EngineTraits (drivers/engine.h).
#pragma once

#include "drivers/engine.h"

namespace ferry::sqlite {

const EngineTraits& Traits();

}  // namespace ferry::sqlite
