from twincast.cli import main

main()
