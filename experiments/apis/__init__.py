"""HTTP APIs of the experiments app, one module per area, one APIView per operation."""
