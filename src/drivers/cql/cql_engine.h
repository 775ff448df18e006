// The CQL engine's traits (drivers/engine.h): no transactions, no session
// locks, CQL's own grammar and vocabulary. Built with or without the driver.
#pragma once

#include "drivers/engine.h"

namespace ferry::cql {

const EngineTraits& Traits();

}  // namespace ferry::cql
