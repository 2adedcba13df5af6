// Every test file starts with EMF metric lines off; a test that reads them turns them on.
process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
