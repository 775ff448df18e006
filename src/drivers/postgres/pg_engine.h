// PostgreSQL's EngineTraits (drivers/engine.h).
#pragma once

#include "drivers/engine.h"

namespace ferry::postgres {

const EngineTraits& Traits();

}  // namespace ferry::postgres
