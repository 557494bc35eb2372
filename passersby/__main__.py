from passersby.cli import main

raise SystemExit(main())
