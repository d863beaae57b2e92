/* main.c: the program blockbox-serve (also `blockbox serve`, which runs it): the
 * Roboflow remote-executor protocol over HTTP; everything is in serve_main.c. */
#include <signal.h>

#include "serve.h"

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);   /* as under `blockbox serve`: a closed peer is an error value */
    return bb_serve_main(argc, argv);
}
