from cra_fw.cli import main

main()
