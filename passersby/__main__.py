from passersby.cli.main import main

raise SystemExit(main())
