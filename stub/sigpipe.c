#include "sigpipe.h"

#include <signal.h>

void ignore_sigpipe(void)
{
	signal(SIGPIPE, SIG_IGN);
}
