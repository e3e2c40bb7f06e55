package Kle::Hooks;

# A receiver for the module's hook POSTs (t/lib/Kle/hook_receiver.py),
# started when this module is loaded, stopped at the end of the run.
#
#   TEST_NGINX_HOOK_PORT     the receiver: http://127.0.0.1:PORT/ANY/PATH
#                            (a "?code=N" query makes it answer N)
#   TEST_NGINX_CLOSED_PORT   a port where nothing listens (the file's
#                            extra port 9, see Kle::Harness)
#
# hooks_received() lists what arrived, oldest first: hashes with seq,
# time, method, path, content_type and body (decoded JSON, else text).

use strict;
use warnings;

use Exporter 'import';
use File::Basename qw(dirname);
use File::Spec ();
use File::Temp qw(tempdir);
use POSIX qw(WNOHANG SIGTERM SIGKILL);
use Time::HiRes qw(sleep time);

use Kle::Harness ();
use Kle::Emulator ();

our @EXPORT = qw(hooks_received hooks_clear);

my $Script = File::Spec->catfile(dirname(File::Spec->rel2abs(__FILE__)),
                                 'hook_receiver.py');
my $Owner = $$;
my ($Dir, $Pid);

sub start () {
    $Dir = tempdir('kle-hooks-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    $Pid = Kle::Emulator::spawn_watched("$Dir/receiver.out", $Script,
                                        '--dir', $Dir);
    my $deadline = time + 10;
    until (-s "$Dir/port") {
        die "hook_receiver.py did not start\n"
            if time > $deadline || waitpid($Pid, WNOHANG) == $Pid;
        sleep 0.02;
    }
    open my $in, '<', "$Dir/port" or die "$Dir/port: $!\n";
    chomp(my $port = <$in>);
    close $in;
    $ENV{TEST_NGINX_HOOK_PORT} = $port;
    $ENV{TEST_NGINX_CLOSED_PORT} = Kle::Harness::extra_port(9);
}

sub hooks_received () {
    open my $in, '<', "$Dir/hooks.jsonl" or return [];
    my @recs;
    while (my $line = <$in>) {
        my $r = Kle::Emulator::json_decode($line);
        push @recs, $r if $r;
    }
    close $in;
    return \@recs;
}

sub hooks_clear () {
    open my $out, '>', "$Dir/hooks.jsonl" or die "$Dir: $!\n";
    close $out;
}

start();

END {
    local $?;
    if ($$ == $Owner && $Pid) {
        kill SIGTERM, $Pid;
        my $deadline = time + 5;
        while (waitpid($Pid, WNOHANG) != $Pid) {
            if (time > $deadline) {
                kill SIGKILL, $Pid;
                waitpid($Pid, 0);
                last;
            }
            sleep 0.02;
        }
    }
}

1;
