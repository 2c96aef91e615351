package diagnosis

// HealthyWorld lets the external tests (which render findings with the
// report package, an import cycle for this package's own tests) start from
// the same healthy facts as the rule tests.
var HealthyWorld = healthyWorld
