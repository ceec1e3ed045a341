/* libyaml's own <yaml.h>. Our proxy/yaml.h shadows it on the include path
 * (-I proxy), so yaml.c includes this as <libyaml.h>, found through that same
 * -I, and #include_next continues the search past proxy/ to the system copy. */
#include_next <yaml.h>
