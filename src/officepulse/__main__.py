from officepulse.cli import main

main()
