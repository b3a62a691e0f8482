"""A plain testinfra test beside the site's checks: testinfra's `host` fixture, on the run's targets."""


def test_os_release_names_the_system(host):
    assert "ID=" in host.run("cat /etc/os-release").stdout


def test_an_unrecorded_command_says_so(host):
    result = host.run("uname -r")
    if host.backend.NAME == "snapshot":
        assert result.rc == 127 and "not recorded in snapshot" in result.stderr
    else:
        assert result.rc == 0 and result.stdout.strip()
