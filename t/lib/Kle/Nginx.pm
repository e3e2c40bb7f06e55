package Kle::Nginx;

# A second (third, ...) nginx beside the one Test::Nginx runs: its own
# prefix directory (Test::Nginx's server root + "_NAME", e.g.
# t/servroot_003_b), port (the file's next extra port, see Kle::Harness)
# and configuration, the module loaded from TEST_NGINX_LOAD_MODULES.
# Stopped with SIGQUIT by stop(), or at the end of the run.
#
#     my $b = Kle::Nginx->new(name => 'b', http_config => '...',
#                             config => 'location ...', master => 1);
#     $b->start;  ...  $b->get('/leader');  ...  $b->stop;

use strict;
use warnings;

use File::Path qw(make_path remove_tree);
use File::Spec ();
use IO::Socket::INET ();
use POSIX qw(WNOHANG SIGQUIT SIGKILL);
use POSIX ();
use Time::HiRes qw(sleep time);

use Kle::Harness ();
use Kle::Emulator ();

my %Running;   # prefix => object, for END
my $Owner = $$;

# Extra ports 1 .. 8 of the file go to instances (and free_port()) in the
# order they are asked for (9 is Kle::Hooks' closed port).
my $NextPort = 1;

sub next_port () {
    die "Kle::Nginx: more than 8 extra ports in one file\n" if $NextPort > 8;
    return Kle::Harness::extra_port($NextPort++);
}

# The file's next free extra port, for a server a test configures itself
# (the name predates the extra ports; it no longer binds and closes).
sub free_port () { next_port() }

# name, http_config (inside http {}), config (inside server {}),
# main_config, master (0/1), workers, port, log_level; bin (the nginx
# binary, default "nginx" from PATH: a binary upgrade needs a full path,
# as nginx executes its own argv[0]); env (a hash the
# master starts with, besides this process's environment) and wrap (a
# command and its arguments that run nginx's command line, e.g. unshare).
sub new {
    my ($class, %o) = @_;
    my $self = bless { %o }, $class;
    $self->{name} //= 'b';
    $self->{port} //= next_port();
    $self->{workers} //= 1;
    $self->{master} //= 0;
    $self->{log_level} //= 'info';
    $self->{prefix} = "$ENV{TEST_NGINX_SERVROOT}_$self->{name}";
    return $self;
}

sub port { $_[0]{port} }
sub prefix { $_[0]{prefix} }
sub error_log_file { "$_[0]{prefix}/logs/error.log" }
sub pid_file { "$_[0]{prefix}/logs/nginx.pid" }

sub pid {
    my $self = shift;
    open my $in, '<', $self->pid_file or return undef;
    my $pid = <$in> // '';
    close $in;
    $pid =~ s/\s+//g;
    return $pid =~ /^\d+$/ ? $pid : undef;
}

sub error_log {
    my $self = shift;
    open my $in, '<', $self->error_log_file or return '';
    local $/;
    my $s = <$in> // '';
    close $in;
    return $s;
}

sub write_config {
    my $self = shift;
    my $p = $self->{prefix};
    remove_tree($p) if -d $p;
    make_path("$p/logs", "$p/conf", "$p/html");

    my $conf = '';
    for my $mod (grep { $_ ne '' }
                 split /\s+/, $ENV{TEST_NGINX_LOAD_MODULES} // '')
    {
        $conf .= "load_module $mod;\n";
    }
    my $master = $self->{master} ? 'on' : 'off';
    $conf .= <<"_EOC_";
worker_processes $self->{workers};
daemon on;
master_process $master;
error_log $p/logs/error.log $self->{log_level};
pid $p/logs/nginx.pid;
@{[ $> == 0 ? 'user root;' : '' ]}
@{[ $self->{main_config} // '' ]}

events {
    worker_connections 64;
    accept_mutex off;
}

http {
    access_log off;
    default_type text/plain;

@{[ $self->{http_config} // '' ]}

    server {
        listen 127.0.0.1:$self->{port};
        server_name localhost;

@{[ $self->{config} // '' ]}
    }
}
_EOC_
    open my $out, '>', "$p/conf/nginx.conf" or die "$p: $!\n";
    print $out $conf;
    close $out;
}

sub start {
    my $self = shift;
    $self->write_config;
    my $p = $self->{prefix};
    my @cmd = ($self->{bin} // 'nginx', '-p', "$p/", '-c', "$p/conf/nginx.conf",
               '-e', "$p/logs/error.log");
    @cmd = (@{ $self->{wrap} }, @cmd) if $self->{wrap};
    my $out = do {
        local %ENV = (%ENV, %{ $self->{env} || {} });
        my $pid = open my $fh, '-|';
        die "fork: $!\n" unless defined $pid;
        if (!$pid) {
            open STDERR, '>&', \*STDOUT;
            { no warnings "exec"; exec { $cmd[0] } @cmd; }
            POSIX::_exit(127);
        }
        local $/;
        my $text = <$fh> // '';
        close $fh;
        $text;
    };
    die "nginx $self->{name} did not start (@cmd): $out\n" if $? != 0;
    $Running{$p} = $self;

    my $deadline = time + 10;
    while (time < $deadline) {
        my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                         PeerPort => $self->{port},
                                         Proto => 'tcp', Timeout => 1);
        if ($sock) {
            close $sock;
            return $self;
        }
        sleep 0.02;
    }
    die "nginx $self->{name} does not listen on $self->{port}\n";
}

sub running {
    my $self = shift;
    my $pid = $self->pid or return 0;
    return 0 unless kill 0, $pid;
    open my $in, '<', "/proc/$pid/stat" or return 0;
    my $st = <$in> // '';
    close $in;
    return $st !~ /\)\s+Z\s/;
}

# SIGQUIT (or $sig), then waits until the master is gone; SIGKILL after
# $secs.  Returns how long it took.
sub stop {
    my ($self, $sig, $secs) = @_;
    my $pid = $self->pid;
    delete $Running{$self->{prefix}};
    return 0 unless $pid && $self->running;
    my $t0 = time;
    kill $sig // SIGQUIT, $pid;
    my $deadline = time + ($secs // 10);
    while ($self->running) {
        if (time > $deadline) {
            kill SIGKILL, $pid;
            sleep 0.1;
            last;
        }
        sleep 0.01;
    }
    return time - $t0;
}

sub get {
    my ($self, $path, $timeout) = @_;
    return Kle::Emulator::nginx_get($path, $self->{port}, $timeout);
}

sub status {
    my ($self, $path) = @_;
    return Kle::Emulator::nginx_status($path // '/leader', $self->{port});
}

END {
    local $?;
    if ($$ == $Owner) {
        $_->stop for values %Running;
    }
}

1;
